"""Under CI=true a skipped test fails (tests/conftest.py), so a missing install step cannot hide behind a skip."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CASES = '''
import pytest

def test_needs_a_tool():
    pytest.skip("the tool is not installed")

@pytest.mark.xfail(strict=True, reason="a known limit")
def test_known_limit():
    assert False

def test_fine():
    pass
'''


def _run(pytester, monkeypatch, ci: str | None):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_cases=CASES)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_a_skip_fails_under_ci_and_names_its_reason(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, "true")
    result.assert_outcomes(failed=1, passed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true*the tool is not installed*"])


def test_a_skip_stays_a_skip_outside_ci(pytester, monkeypatch):
    _run(pytester, monkeypatch, None).assert_outcomes(skipped=1, passed=1, xfailed=1)
