"""TSV reader: Tatoeba/Anki layout, malformed lines with line numbers, UTF-8 errors."""

import pytest

from attnkit.data.tsv import read_tsv
from attnkit.errors import InputError

TATOEBA = (
    "Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #4986655 (cueyayotl)\n"
    "\n"
    "Hi.\tHola.\n"
    "no tab at all\n"
    "   \n"
    "\tempty source\n"
    "Run!\t  \n"
    "Who?\t¿Quién?\textra\tmore\r\n"
)


def write(tmp_path, text, name="eng-spa.tsv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


def test_skip_collects_malformed_lines_with_numbers(tmp_path):
    data = read_tsv(write(tmp_path, TATOEBA), on_error="skip")
    assert data.pairs == [("Go.", "Ve."), ("Hi.", "Hola."), ("Who?", "¿Quién?")]
    assert [(p.line, p.reason) for p in data.problems] == [
        (4, "no tab"),
        (6, "empty source"),
        (7, "empty target"),
    ]
    assert (
        data.describe_problems()
        == "skipped 3 malformed lines: 4 (no tab), 6 (empty source), 7 (empty target)"
    )


def test_raise_names_file_and_first_bad_line(tmp_path):
    p = write(tmp_path, TATOEBA)
    with pytest.raises(
        InputError, match=r"eng-spa.tsv: line 4: malformed line \(no tab\).*Received: 'no tab at all'"
    ):
        read_tsv(p)


def test_byte_order_mark_and_crlf(tmp_path):
    p = write(tmp_path, "\ufeffa\tb\r\nc\td\r\n")
    assert read_tsv(p).pairs == [("a", "b"), ("c", "d")]


def test_invalid_utf8_reports_line(tmp_path):
    p = write(tmp_path, "ok\tbien\n" + "caf\xe9\tcafe\n", encoding="latin-1")
    with pytest.raises(InputError, match=r"line 2: not valid UTF-8 \(byte 0xe9"):
        read_tsv(p)


def test_missing_empty_and_bad_flag(tmp_path):
    with pytest.raises(InputError, match="TSV file '.*nope.tsv' does not exist"):
        read_tsv(tmp_path / "nope.tsv")
    with pytest.raises(
        InputError, match=r"no 'source<TAB>target' pairs found \(skipped 1 malformed line: 3 \(no tab\)\)"
    ):
        read_tsv(write(tmp_path, "\n\njust text\n"), on_error="skip")
    with pytest.raises(ValueError, match="Expected on_error to be one of .* Received: on_error='ignore'"):
        read_tsv(write(tmp_path, "a\tb\n"), on_error="ignore")
