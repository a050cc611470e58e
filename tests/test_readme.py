"""Every Python block of the README and of the documentation pages (docs/) runs as written.

A block that appears word for word on several pages (a README example adapted into a guide) runs once.
``code_blocks`` is shared with ``tests/test_course_map.py``, which also runs the course map's shell blocks.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def code_blocks(path: Path, language: str = "python") -> list[str]:
    """The fenced ```language blocks of a Markdown file, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def _cases() -> list[tuple[Path, int]]:
    seen, cases = set(), []
    for page in PAGES:
        for index, block in enumerate(code_blocks(page)):
            if block not in seen:
                seen.add(block)
                cases.append((page, index))
    return cases


CASES = _cases()


def test_readme_has_python_examples():
    assert len(code_blocks(README)) >= 2


@pytest.mark.parametrize(("page", "index"), CASES, ids=[f"{p.relative_to(ROOT)}:{i}" for p, i in CASES])
def test_block_runs(page, index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = code_blocks(page)[index]
    exec(compile(source, f"{page.relative_to(ROOT)} block {index}", "exec"), {"__name__": "__readme__"})
