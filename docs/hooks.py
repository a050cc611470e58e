"""MkDocs hooks of attnkit's site (named in mkdocs.yml; nothing here reaches the network).

- ``on_files``: adds ``reference/cli.md``, rendered from the ``attnkit`` command tree at build time
  (``docs/gen_cli.py``).
- griffe reads the docstrings' ``Example:`` sections (attnkit's spelling) as it reads ``Examples:``, so their
  doctests render as code, not as Markdown text.
- ``on_page_content``: the docstrings are written for Sphinx-style readers (``:mod:`x```, ``:func:`~a.b```);
  Markdown renders the role names as text before the code, so they are dropped and the ``~`` prefix with them.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from griffe import DocstringSectionKind
from mkdocs.structure.files import File

try:  # griffe names its Google-style sections in one table; attnkit writes "Example:" above its doctests
    from griffe._internal.docstrings import google as _google

    _google._section_kind.setdefault("example", DocstringSectionKind.examples)
except (ImportError, AttributeError):  # another griffe: the examples render as text, the build still passes
    pass

_HERE = Path(__file__).resolve().parent
_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|obj|exc|ref|py:\w+):(<code>)~?")


def _gen_cli():
    spec = importlib.util.spec_from_file_location("attnkit_docs_gen_cli", _HERE / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_files(files, config):
    files.append(File.generated(config, "reference/cli.md", content=_gen_cli().cli_markdown()))
    return files


def on_page_content(html, page, config, files):
    return _ROLE.sub(r"\1", html)
