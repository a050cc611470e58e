"""``attnkit tune``: time the attention paths for the shapes you use, keep the winners for every later run.

Without it, the first call of each shape class is timed when it happens (``attnkit.functional.tuning``); this
command does it ahead of time and prints what it found. ``--show`` prints this machine's cache without timing.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from attnkit.cli._options import Threads, apply_threads, flag
from attnkit.cli.main import app
from attnkit.errors import InputError

console = Console()
MODES = {"both": (False, True), "forward": (False,), "training": (True,)}


def _lengths(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or any(not 1 <= n <= 65_536 for n in values):
        raise InputError(f"--lengths must be comma-separated integers in 1..65536, e.g. 128,512. Received: {text!r}")
    return values


def _check(mask: str, mode: str) -> None:
    """The text options (the numeric ones are bounded by ``attnkit.cli._options.OPTION_BOUNDS``)."""
    if mask not in ("none", "padding"):
        raise InputError(f"--mask must be none or padding. Received: {mask!r}")
    if mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}. Received: {mode!r}")


def _show() -> None:
    from attnkit.functional import tuning  # noqa: PLC0415

    path = tuning.cache_path()
    entries = tuning.read_cache(path)["machines"].get(tuning.machine_key(), {})
    console.print(f"{path}: {len(entries)} shape classes measured on {tuning.machine_key()}", soft_wrap=True)
    for cls, entry in sorted(entries.items()):
        console.print(f"  {cls}: {entry['path']}  {entry.get('ms', {})}", soft_wrap=True, highlight=False)


@app.command("tune")
def tune(
    lengths: Annotated[str, typer.Option("--lengths", help="Sequence lengths to tune, comma-separated (query = "
                                         "key length).")] = "128,512,2048",
    batch: Annotated[int, typer.Option("--batch", help="Batch size.")] = 8,
    heads: Annotated[int, typer.Option("--heads", help="Attention heads.")] = 8,
    head_dim: Annotated[int, typer.Option("--head-dim", help="Width of one head.")] = 64,
    mask: Annotated[str, typer.Option("--mask", help="none, or padding (a key padding mask).")] = "none",
    causal: Annotated[bool, flag("--causal", help="Causal attention (GPT-style).")] = False,
    mode: Annotated[str, typer.Option("--mode", help="forward (inference), training (forward and backward) or "
                                      "both.")] = "both",
    show: Annotated[bool, flag("--show", help="Print this machine's cached winners and exit (no timing).")] = False,
    threads: Threads = 0,
) -> None:
    """Time SDPA's fused kernel against the formula as two matrix products for each shape and keep the fastest.

    The winners go to the tuning cache (``$ATTNKIT_CACHE_DIR``, else ``~/.cache/attnkit``/``tuning.json``),
    keyed by this CPU, its vector flags and the torch version; every later ``attention()`` call of the same
    shape class takes the winner (``ATTNKIT_TUNE=0`` turns that off). Results never change beyond float
    tolerance: every path computes the same attention.
    """
    if show:
        _show()
        return
    values = _lengths(lengths)
    _check(mask, mode)
    apply_threads(threads)
    rows = _measure(values, batch, heads, head_dim, mask, causal, MODES[mode])
    table = Table("shape class", "fused ms", "reference ms", "winner")
    for cls, ms, winner in rows:
        table.add_row(cls, *(f"{ms[p]:.2f}" if p in ms else "-" for p in ("fused", "reference")), winner)
    console.print(table)
    from attnkit.functional import tuning  # noqa: PLC0415

    console.print(f"kept in {tuning.cache_path()}" + ("" if tuning.tuning_enabled() else
                  " (ATTNKIT_TUNE=0 is set: attention() will not use it until you unset it)"), soft_wrap=True)


def _measure(lengths: list[int], batch: int, heads: int, head_dim: int, mask: str, causal: bool,
             grads: tuple[bool, ...]) -> list[tuple[str, dict[str, float], str]]:
    """Time every (length, gradient) case and save its winner; rows ``(shape class, ms per path, winner)``."""
    import torch  # noqa: PLC0415

    from attnkit.functional import tuning  # noqa: PLC0415
    from attnkit.functional.dispatch import PATHS  # noqa: PLC0415

    rows = []
    for t in lengths:
        for grad in grads:
            q, k, v = (torch.randn(batch, heads, t, head_dim, requires_grad=grad) for _ in range(3))
            m = None
            if mask == "padding":
                m = torch.arange(t)[None, None, None, :] < torch.randint(1, t + 1, (batch, 1, 1, 1))  # (B, 1, 1, T)
            with torch.set_grad_enabled(grad):
                cls = tuning.shape_class(q, k, v, score="scaled_dot", mask=m, causal=causal)
                ms = tuning.measure(q, k, v, PATHS, tuning.candidates(q, k), score="scaled_dot",
                                    scale=head_dim**-0.5, mask=m, causal=causal)
            rows.append((cls, ms, tuning.save_winner(tuning.cache_path(), cls, ms)))
            console.print(f"{cls}: {rows[-1][2]}", soft_wrap=True, highlight=False)
    return rows
