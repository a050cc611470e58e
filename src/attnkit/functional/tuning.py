"""Attention paths chosen by measurement on the user's machine (``ATTNKIT_TUNE=0`` turns it off).

Which path computes full attention fastest depends on the CPU, the shapes, the mask and whether gradients
flow: SDPA's fused kernel (:mod:`.fused`), or the formula as two matrix products around a softmax
(:mod:`.reference`, the way Keras computes attention), which on some CPUs wins the backward pass. The rules of
:func:`attnkit.functional.dispatch.choose` send every call with a named score and no weights to ``fused``; with
tuning on, the first call of a *shape class* times the candidate paths on detached copies of that call's own
inputs (:func:`measure`: at most :data:`MEASURE_SCORES` score elements of them, a warm-up call and a timed
round, then interleaved rounds and medians of the paths within 2x of the fastest; forward and backward when gradients
flow) and keeps the fastest, in memory and in a small JSON cache file, so later calls and later
processes pay nothing.

Tuned calls (:func:`wanted`): tuning on, a named score, no weights, no ``chunk_size``, no dropout (paths draw
different dropout masks), no bias, no tracing (``torch.compile``), and at least :data:`MIN_SCORES` score elements
(below that the timing costs more than any path saves). ``reference`` is a candidate only while its weights fit
in :data:`MAX_MATERIALISED` elements. Everything else follows the rules, as it does with tuning off.

Shape class (:func:`shape_class`): device type, dtype, score, rows (the product of the leading dims), ``Tq`` and
``Tk`` rounded up to a power of two, query and value widths, the mask's form (``none``, ``keys`` for one mask
row per batch row, ``full``), causal or not, and whether gradients flow.

Cache file (:func:`cache_path`): ``$ATTNKIT_CACHE_DIR/tuning.json``, else ``$XDG_CACHE_HOME/attnkit/tuning.json``,
else ``~/.cache/attnkit/tuning.json``; one entry per machine (CPU model and vector flags, torch version)::

    {"format": "attnkit-tuning/1",
     "machines": {"AMD EPYC 7B13; avx2 fma | torch 2.13.0":
                  {"cpu float32 scaled_dot rows=64 tq=2048 tk=2048 dq=64 dv=64 mask=none causal=0 grad=1":
                   {"path": "reference", "ms": {"fused": 1490.2, "reference": 1288.0}}}}}

Only this machine's entry is used; a file that is not JSON of this format is ignored with one warning (and
replaced by the next save); other machines' entries are kept. Tuning never changes results beyond float
tolerance: every candidate computes the same masked softmax attention and is tested against the float64
definition (``tests/functional``).

Example (the shape class of a training call; tuning itself is off in the test suite):
    >>> q = k = v = torch.randn(2, 4, 300, 16, requires_grad=True)
    >>> shape_class(q, k, v, score="scaled_dot", mask=None, causal=True)
    'cpu float32 scaled_dot rows=8 tq=512 tk=512 dq=16 dv=16 mask=none causal=1 grad=1'
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from attnkit.functional._checks import Path as PathFn

TUNE_ENV = "ATTNKIT_TUNE"
CACHE_ENV = "ATTNKIT_CACHE_DIR"
FORMAT = "attnkit-tuning/1"
#: The paths that compute the same thing as ``fused`` for a tuned call, in the order they are tried.
CANDIDATES: tuple[str, ...] = ("fused", "reference")
#: Calls with fewer score elements (rows x Tq x Tk) follow the rules: timing them costs more than it saves.
MIN_SCORES = 2**18
#: ``reference`` materialises the weights: a candidate only up to this many (4 GiB of float32 with its gradient).
MAX_MATERIALISED = 2**28
#: Timed rounds per candidate (after one warm-up round), medians kept.
ROUNDS = 3
#: A large call is timed on its first batch rows only, at most this many score elements (rows x Tq x Tk).
MEASURE_SCORES = 2**24
#: Another path replaces the rules' own (``fused``, the first candidate) only when it measured at least this
#: fraction faster: a near tie is noise, and a path timed alone on a sample of the call can lose in the model
#: (``reference`` measured 2% faster than ``fused`` for a (8, 8, 512, 64) training call once, then made the
#: whole attention layer 1.3x slower).
MARGIN = 0.10

_tables: dict[str, dict[str, str]] = {}  # cache path -> this machine's {shape class: path}, read once


def tuning_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """True unless ``ATTNKIT_TUNE`` is ``0`` (or ``false``, ``no``, ``off``).

    Example:
        >>> tuning_enabled({"ATTNKIT_TUNE": "0"}), tuning_enabled({})
        (False, True)
    """
    return environ.get(TUNE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the winners are kept: ``$ATTNKIT_CACHE_DIR/tuning.json``, ``$XDG_CACHE_HOME/attnkit/tuning.json``
    or ``~/.cache/attnkit/tuning.json``.

    Example:
        >>> str(cache_path({"ATTNKIT_CACHE_DIR": "/tmp/ak-cache"})), str(cache_path({"XDG_CACHE_HOME": "/c"}))
        ('/tmp/ak-cache/tuning.json', '/c/attnkit/tuning.json')
    """
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]) / "tuning.json"
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "attnkit" / "tuning.json"


def machine_key() -> str:
    """This machine as the cache knows it: CPU model, vector flags and torch version.

    Example:
        >>> machine_key().endswith("torch " + torch.__version__)
        True
    """
    from attnkit.machine import cpu_description

    cpu = cpu_description().replace("CPU ", "", 1).split(";")
    return f"{cpu[0].strip()}; {cpu[-1].replace('vector flags:', '').strip()} | torch {torch.__version__}"


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def shape_class(query: Tensor, key: Tensor, value: Tensor, *, score: str, mask: Tensor | None,
                causal: bool) -> str:
    """The class a call is tuned for (see the module docstring); query ``(..., Tq, Dq)``, key ``(..., Tk, Dq)``,
    value ``(..., Tk, Dv)``, mask broadcastable to ``(..., Tq, Tk)``."""
    rows = 1
    for n in torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2]):
        rows *= n
    form = "none" if mask is None else ("keys" if mask.dim() < 2 or mask.shape[-2] == 1 else "full")
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    return (f"{query.device.type} {str(query.dtype).removeprefix('torch.')} {score} rows={rows} "
            f"tq={_pow2(query.shape[-2])} tk={_pow2(key.shape[-2])} dq={query.shape[-1]} dv={value.shape[-1]} "
            f"mask={form} causal={int(causal)} grad={int(grad)}")


def _score_count(query: Tensor, key: Tensor) -> int:
    """Score elements of a call: rows (the query's leading dims) x ``Tq`` x ``Tk``."""
    return query.numel() // max(1, query.shape[-1]) * key.shape[-2]


def wanted(query: Tensor, key: Tensor, *, score: object, dropout_p: float, bias: Tensor | None) -> bool:
    """Whether a call the rules send to ``fused`` is tuned (see the module docstring). The size is checked
    first: it is the cheapest test and the one a decoding step (a few scores per call) fails."""
    if _score_count(query, key) < MIN_SCORES or not isinstance(score, str) or dropout_p > 0 or bias is not None:
        return False
    return tuning_enabled() and not (torch.compiler.is_compiling() or torch.jit.is_scripting())


def candidates(query: Tensor, key: Tensor) -> tuple[str, ...]:
    """The paths timed for a call: :data:`CANDIDATES`, without ``reference`` past :data:`MAX_MATERIALISED`."""
    big = _score_count(query, key) > MAX_MATERIALISED
    return tuple(p for p in CANDIDATES if not (big and p == "reference"))


def _sample(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> tuple[Tensor, ...]:
    """Detached copies of the inputs, cut along the first (batch) dim to at most :data:`MEASURE_SCORES` score
    elements, so that timing a large call costs a fraction of one call."""
    n = query.shape[0]
    if query.dim() > 2:
        per_batch_row = _score_count(query[0], key)  # heads x Tq x Tk
        n = max(1, min(n, MEASURE_SCORES // per_batch_row))

    def cut(t: Tensor | None) -> Tensor | None:
        keep = t is None or query.dim() <= 2 or t.dim() < query.dim() or t.shape[0] == 1
        return t if keep else t[:n]

    q, k, v = (cut(t).detach().clone() for t in (query, key, value))
    return q, k, v, cut(mask)


def measure(query: Tensor, key: Tensor, value: Tensor, paths: Mapping[str, PathFn], names: tuple[str, ...], *,
            score: str, scale: float, mask: Tensor | None, causal: bool, rounds: int = ROUNDS) -> dict[str, float]:
    """Median milliseconds of each path (forward, and backward when gradients flow) on detached copies of the
    call's inputs (at most :data:`MEASURE_SCORES` score elements of them), through the one timer
    (:mod:`attnkit.timing`). After one untimed call each, one timed round; a path over twice as slow as the
    fastest there is not timed further (that time is kept), so a slow candidate costs two calls; the first
    name (the rules' path) is always timed further, so one slow warm round cannot rule it out."""
    from attnkit.timing import interleaved_medians, timed

    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    q, k, v, mask = _sample(query, key, value, mask)
    q, k, v = (t.requires_grad_(grad) for t in (q, k, v))
    sync = torch.cuda.synchronize if q.is_cuda else (lambda: None)

    def call(name: str) -> Callable[[], None]:
        def run() -> None:
            with torch.set_grad_enabled(grad):
                out, _ = paths[name](q, k, v, score=score, scale=scale, mask=mask, causal=causal, dropout_p=0.0,
                                     return_weights=False, chunk_size=None, bias=None, kind=None)
                if grad:
                    q.grad = k.grad = v.grad = None
                    out.sum().backward()
            sync()
        return run

    for name in names:
        call(name)()  # first calls pay one-time costs (kernel selection, lazy initialisation): not timed
    warm = {name: timed(call(name))[1] for name in names}
    close = [name for i, name in enumerate(names) if i == 0 or warm[name] <= 2 * min(warm.values())]
    seconds = dict(warm)
    if len(close) > 1:
        seconds.update(interleaved_medians({name: call(name) for name in close}, repeat=rounds, warmup=0))
    return {name: round(seconds[name] * 1e3, 3) for name in names}


def read_cache(path: Path) -> dict:
    """The cache file's content, or an empty cache (with one warning) when it is missing a format, corrupt or
    not a file; a missing file is an empty cache without a warning.

    Example:
        >>> read_cache(Path("/nonexistent/tuning.json"))
        {'format': 'attnkit-tuning/1', 'machines': {}}
    """
    empty = {"format": FORMAT, "machines": {}}
    if not path.exists():
        return empty
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ok = (isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("machines"), dict)
              and all(isinstance(t, dict) and all(isinstance(e, dict) and e.get("path") in CANDIDATES
                                                  for e in t.values()) for t in data["machines"].values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        ok = False
    if not ok:
        warnings.warn(f"attnkit: ignoring the attention tuning cache {str(path)!r}: it is not an {FORMAT} file "
                      "(it will be replaced; delete it or set ATTNKIT_TUNE=0 to stop tuning)", stacklevel=2)
        return empty
    return data


def winner(ms: Mapping[str, float]) -> str:
    """The path kept for timings ``ms``: the first candidate timed (the rules' path), unless the fastest other
    path took at most ``1 - MARGIN`` of its time.

    Example:
        >>> winner({"fused": 2.0, "reference": 1.5}), winner({"fused": 2.0, "reference": 1.9})
        ('reference', 'fused')
    """
    default = next((name for name in CANDIDATES if name in ms), min(ms, key=ms.__getitem__))
    fastest = min(ms, key=ms.__getitem__)
    return fastest if ms[fastest] <= (1 - MARGIN) * ms[default] else default


def _table(path: Path) -> dict[str, str]:
    """This machine's winners ``{shape class: path}``, read from ``path`` once per process (decided again from
    the recorded times, so that an entry written under another rule follows this one)."""
    if str(path) not in _tables:
        entries = read_cache(path)["machines"].get(machine_key(), {})
        _tables[str(path)] = {cls: winner(e["ms"]) if _timings(e.get("ms")) else e["path"]
                              for cls, e in entries.items()}
    return _tables[str(path)]


def _timings(ms: object) -> bool:
    """Whether a cache entry's ``ms`` is a timing of every candidate it names (positive numbers)."""
    return (isinstance(ms, dict) and bool(ms) and all(name in CANDIDATES for name in ms)
            and all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in ms.values()))


def save_winner(path: Path, cls: str, ms: dict[str, float]) -> str:
    """Record the fastest path of ``cls`` (from its timings ``ms``) in memory and in the cache file at ``path``
    (read again, this machine's entry updated, written atomically); returns the winner. A cache that cannot be
    written (read-only home) keeps the winner for this process only.

    Example:
        >>> import tempfile; d = Path(tempfile.mkdtemp())
        >>> save_winner(d / "tuning.json", "cpu float32 ...", {"fused": 2.0, "reference": 1.5})
        'reference'
        >>> json.loads((d / "tuning.json").read_text())["format"]
        'attnkit-tuning/1'
    """
    from attnkit.storage.files import updating, write_json

    best = winner(ms)
    _table(path)[cls] = best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a bad file was reported when it was first read
        data = read_cache(path)
    data["machines"].setdefault(machine_key(), {})[cls] = {"path": best, "ms": ms}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with updating():  # a cache kept current on purpose: one command may tune several shape classes
            write_json(path, data, sort_keys=True)
    except OSError:
        pass
    return best


def tuned_path(query: Tensor, key: Tensor, value: Tensor, paths: Mapping[str, PathFn], *, score: str, scale: float,
               mask: Tensor | None, causal: bool, cache: Path | None = None) -> str:
    """The path of a tuned call: the cached winner of its shape class, or the winner of a measurement now
    (kept in ``cache``, by default :func:`cache_path`). A class with one candidate is not timed.

    Example (with a private cache directory; tuning is on for this call only):
        >>> import tempfile; from attnkit.functional.dispatch import PATHS
        >>> q = torch.randn(4, 2, 256, 8)
        >>> tuned_path(q, q, q, PATHS, score="dot", scale=1.0, mask=None, causal=False,
        ...            cache=Path(tempfile.mkdtemp()) / "tuning.json") in CANDIDATES
        True
    """
    cls = shape_class(query, key, value, score=score, mask=mask, causal=causal)
    path = cache or cache_path()
    table = _table(path)
    names = candidates(query, key)
    if len(names) == 1:
        return names[0]
    if cls not in table:
        ms = measure(query, key, value, paths, names, score=score, scale=scale, mask=mask, causal=causal)
        save_winner(path, cls, ms)
    return table[cls]
