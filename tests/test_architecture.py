"""The layout rules of ``shared/design.md``, checked on the source as text (``ast``), nothing imported.

- data flows one way: a package imports only the packages below it (``LAYERS``), and no module takes part in
  an import cycle (imports inside functions and under ``TYPE_CHECKING`` count too);
- ``training/`` and ``viz/`` know no concrete model and no data set;
- no library function is over 60 lines of code (docstrings, comments and blank lines not counted);
- no deprecation or alias code; every model output lives in ``models/outputs.py``;
- every file is written through ``attnkit.storage``'s one writer (``storage/files.py``): no direct write
  anywhere else;
- reading GPT end to end (model, block, attention engine, cache, decoding, functional path) takes at most
  700 lines of code.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "attnkit"

#: What each top-level part of attnkit may import (besides itself, ``attnkit.errors``, the lazy root and the
#: leaves every layer may use: ``attnkit.timing``, the one timer, and ``attnkit.machine``, what CPU this is).
LEAVES = {"errors", "attnkit", "timing", "machine"}
LAYERS: dict[str, set[str]] = {
    "timing": set(),
    "machine": {"timing"},
    "functional": {"storage"},  # the tuning cache file goes through the one writer
    "masks": {"functional"},
    "kernels": {"functional"},
    "layers": {"functional", "kernels"},
    "data": {"storage"},  # the one writer and the name check sit below everything that reads or writes files
    "storage": set(),
    "decoding": {"functional", "kernels", "layers"},
    "models": {"functional", "kernels", "layers", "decoding", "data", "storage"},
    "io": {"models", "storage", "data"},
    "metrics": set(),
    "training": {"functional", "kernels", "storage", "models.base"},
    "viz": {"storage"},
    "bench": {"functional", "kernels", "layers", "decoding", "models", "storage", "data", "training"},
    "recipes": {"functional", "kernels", "layers", "decoding", "models", "storage", "data", "training", "metrics",
                "viz", "io", "bench"},
    "experiments": {"functional", "kernels", "layers", "decoding", "models", "storage", "data", "training",
                    "metrics", "viz", "io", "bench", "recipes"},
    "cli": {"functional", "kernels", "layers", "decoding", "models", "storage", "data", "training", "metrics",
            "viz", "io", "bench", "recipes", "experiments", "masks"},
}

#: The files a reader of GPT reads: the model, its block, the attention engine, the cache, the decoding it
#: runs and the functional path (the one dispatcher and the fused path it takes; the causal-dropout kernel
#: of training is a leaf: it equals SDPA with dropout). Keep this list true when the code moves.
GPT_PATH = [
    "models/gpt.py",
    "models/blocks.py",
    "layers/engine.py",
    "layers/kv_cache.py",
    "decoding/greedy.py",
    "functional/dispatch.py",
    "functional/fused.py",
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = ["attnkit", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The attnkit modules ``name`` imports, anywhere in the file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("attnkit"):
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "attnkit"


def _code_lines(source: str, node: ast.AST) -> int:
    """Lines of ``node`` that are code: not blank, not a comment, not a docstring."""
    docs = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
            docs |= set(range(n.lineno, n.end_lineno + 1))
    lines = source.splitlines()
    first, last = getattr(node, "lineno", 1), getattr(node, "end_lineno", len(lines))
    return sum(1 for i in range(first, last + 1)
               if i not in docs and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#"))


def test_no_import_cycle():
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_each_part_imports_only_the_parts_below_it():
    wrong = defaultdict(set)
    for module, targets in GRAPH.items():
        part = _part(module)
        if part not in LAYERS:
            continue
        allowed = LAYERS[part] | {part} | (LEAVES - {"timing", "machine"} if part in ("timing", "machine") else LEAVES)
        for target in targets:
            t_part = _part(target)
            dotted = ".".join(target.split(".")[1:3])
            if t_part not in allowed and dotted not in allowed:
                wrong[module].add(target)
    assert dict(wrong) == {}


@pytest.mark.parametrize("part", ["training", "viz"])
def test_training_and_viz_know_no_concrete_model_or_data_set(part):
    reached = {t for m, ts in GRAPH.items() if _part(m) == part for t in ts}
    concrete = sorted(t for t in reached if (_part(t) == "models" and t != "attnkit.models.base")
                      or _part(t) in ("data", "recipes", "experiments", "cli"))
    assert concrete == []


def test_no_library_function_is_over_60_lines_of_code():
    long = []
    for path in SRC.rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(source, node) > 60:
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({_code_lines(source, node)})")
    assert long == []


def test_no_deprecation_or_alias_code():
    found = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
             if any(word in p.read_text() for word in ("DeprecationWarning", "FutureWarning", "_deprecation",
                                                       "KIND_ALIASES"))]
    assert found == []


def test_every_model_output_lives_in_outputs_py():
    elsewhere = []
    for path in SRC.rglob("*.py"):
        if path in (SRC / "models" / "outputs.py", SRC / "decoding" / "greedy.py"):  # decoding's result is not a model's
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Output"):
                elsewhere.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert elsewhere == []


def test_reading_gpt_end_to_end_takes_at_most_700_lines():
    counts = {name: _code_lines((SRC / name).read_text(), ast.parse((SRC / name).read_text())) for name in GPT_PATH}
    assert sum(counts.values()) <= 700, counts


def test_gpt_path_lists_every_attnkit_module_gpt_runs():
    """The GPT path is closed: the modules it imports are in it, or are small leaves (checks, kernels, kinds)."""
    names = {"attnkit." + p.removesuffix(".py").replace("/", ".") for p in GPT_PATH}
    outside = sorted(t for n in names for t in GRAPH[n] if t not in names
                     and _part(t) in ("models", "layers", "decoding") and not t.rsplit(".", 1)[-1].startswith("_")
                     and t not in ("attnkit.models.base", "attnkit.models.outputs", "attnkit.models.hub",
                                   "attnkit.decoding.beam"))  # beam search: only with num_beams > 1, shared
    assert outside == [], "add these to GPT_PATH or explain why a GPT reader may skip them"


#: The writer module, the only place allowed to write files.
WRITER = "storage/files.py"
#: Direct writes elsewhere that are not files attnkit produces, each with its reason.
NOT_OUTPUTS = {
    ("bench/measure.py", "open"): "writes '5' into /proc/self/clear_refs, a kernel control file, to reset the peak RSS",
    ("training/budget.py", "torch.save"): "serialises into an in-memory io.BytesIO to time a checkpoint; no file",
}
#: Calls that write a file: open() in a writing mode, and these functions or methods.
WRITING_CALLS = {"write_text", "write_bytes", "savefig", "save_file", "copy", "copy2", "copyfile", "copytree", "move"}


def _direct_writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
        if name == "open" and owner in ("", "io", "builtins"):
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                found.append((node.lineno, "open"))
        elif name == "save" and owner == "torch":
            found.append((node.lineno, "torch.save"))
        elif name in WRITING_CALLS and (name not in ("copy", "copy2", "copyfile", "copytree", "move") or owner == "shutil"):
            found.append((node.lineno, name))
    return found


def test_every_file_is_written_through_the_one_writer():
    """``open(..., "w")``, ``.write_text``, ``.write_bytes``, ``savefig``, ``torch.save``, ``save_file`` and
    ``shutil`` copies appear only in the writer module (docstring examples are not code and do not count)."""
    direct = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == WRITER:
            continue
        direct += [f"{rel}:{line} {call}" for line, call in _direct_writes(ast.parse(path.read_text()))
                   if (rel, call) not in NOT_OUTPUTS]
    assert direct == [], "write through attnkit.storage (atomic_file, write_json, write_figure, ...) instead"


def test_the_direct_write_check_sees_each_kind_of_write():
    """The check above is not blind: each form it forbids is found in a snippet."""
    snippet = """
open(p, "w"); open(p, mode="ab"); open(p); p.write_text("x"); p.write_bytes(b"x"); fig.savefig(p)
torch.save(s, p); save_file(t, p); shutil.copy(a, b); shutil.move(a, b); io.open(p, "w+")
"""
    calls = sorted(call for _, call in _direct_writes(ast.parse(snippet)))
    assert calls == sorted(["open", "open", "write_text", "write_bytes", "savefig", "torch.save", "save_file", "copy",
                            "move", "open"])
