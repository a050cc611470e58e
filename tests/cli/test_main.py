"""The attnkit command's error contract: one line on stderr, exit 2 for usage/input errors, no traceback."""

from attnkit.cli.main import main


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["bench", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnkit: error: No such option: --no-such-option")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_input_is_exit_2_with_one_line(capsys):
    assert main(["bench", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("attnkit: error: unknown benchmark suite 'nope'. "
                           "Expected one of: functional, layers, models, kinds, compile")


def test_debug_shows_the_traceback(capsys):
    assert main(["bench", "nope", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_bare_command_shows_help():
    assert main([]) == 0
    assert main(["--help"]) == 0


def test_every_command_has_help(capsys):
    for args in (["demo"], ["translate"], ["evaluate"], ["bench"], ["generate"], ["train", "seq2seq"],
                 ["train", "transformer"], ["train", "gpt"], ["train", "bert"], ["experiment", "length"]):
        assert main([*args, "--help"]) == 0, args
        out = capsys.readouterr().out
        assert "Usage: attnkit" in out and "--help" in out
