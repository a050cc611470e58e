"""``attnkit.timing`` and ``attnkit.bench.measure``: the one timer and the one peak-memory child, against known properties.

No timed assertion (the machine is shared): the timer is checked on its order and its arithmetic, the
memory probe against what a call is known to allocate (``n`` float32 numbers are ``4 n`` bytes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from attnkit.bench.measure import peak_memories, peak_memory
from attnkit.timing import interleaved_medians, interleaved_samples, paired_ratio, timed

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20


def test_rounds_rotate_who_goes_first_and_warmup_is_not_kept():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = interleaved_samples(fns, repeat=4, warmup=2)
    assert calls[:6] == list("abcabc")  # two warm-up rounds, in order
    assert calls[6:] == list("abc" "bca" "cab" "abc")  # each round starts one later
    assert {name: len(s) for name, s in samples.items()} == {"a": 4, "b": 4, "c": 4}


def test_paired_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians():
    samples = {"x": [1.0, 10.0, 3.0], "y": [1.0, 2.0, 6.0]}  # per round: 1, 5, 0.5
    assert paired_ratio(samples, "x", "y") == 1.0
    assert paired_ratio(samples, "x", "y") != 3.0 / 2.0  # the ratio of the medians


def test_medians_and_timed_measure_a_sleep(monkeypatch):
    clock = iter([0.0, 0.25, 1.0, 1.75])
    monkeypatch.setattr("attnkit.timing.time.perf_counter", lambda: next(clock))
    assert timed(lambda: "done") == ("done", 0.25)
    assert interleaved_medians({"a": lambda: None}, repeat=1, warmup=0) == {"a": 0.75}


@pytest.mark.parametrize("bad", [dict(repeat=0), dict(repeat=2, warmup=-1)])
def test_bad_rounds_are_refused(bad):
    with pytest.raises(ValueError, match="Expected repeat >= 1 and warmup >= 0"):
        interleaved_samples({"a": lambda: None}, **bad)


def test_peak_memory_follows_what_the_call_allocates():
    small, large = (peak_memory("attnkit.bench.measure:_example_factory", {"n": n}) for n in (3_000_000, 12_000_000))
    assert 11 * MiB < small["bytes"] < 40 * MiB  # 12 MB of float32
    assert 45 * MiB < large["bytes"] < 100 * MiB  # 48 MB
    assert large["peak_bytes"] > large["bytes"] and large["seconds"] > 0


def test_peak_memories_frees_between_cases_and_reports_a_failing_case():
    big, bad, small = peak_memories("attnkit.bench.measure:_example_factory",
                                    [{"n": 12_000_000}, {"n": -1}, {"n": 3_000_000}])
    assert 45 * MiB < big["bytes"] < 100 * MiB
    assert bad["bytes"] is None and bad["error"].startswith("RuntimeError: ")
    assert 11 * MiB < small["bytes"] < 40 * MiB  # the big case left nothing that hides the small one


def test_a_child_that_cannot_start_says_why_for_every_case():
    results = peak_memories("no_such_module_xyz:factory", [{}, {}])
    assert [r["bytes"] for r in results] == [None, None]
    assert all("No module named 'no_such_module_xyz'" in r["error"] for r in results)


def test_no_other_timing_loop_or_memory_reader_in_the_benchmarks():
    files = [*(ROOT / "src" / "attnkit" / "bench").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    readers = ("perf_counter", "/proc/self/status", "clear_refs", "ru_maxrss")
    found = [f"{f.name}: {r}" for f in files if f.name != "measure.py" for r in readers if r in f.read_text()]
    assert found == []
