"""nmt/cli/common.py: --set parsing, reading input, user errors as one line, and options that default to None
(the config's value) on the way into a setup."""
import io

import pytest
import typer

from nmt import tasks
from nmt.cli import common
from nmt.config import ConfigError


def test_parse_sets_reads_json_values_and_keeps_text():
    assert common.parse_sets(["a.b=1", "c=x", "d=[1, 2]", "e=true", "f=a=b", " g = 0.5"]) == \
        {"a.b": 1, "c": "x", "d": [1, 2], "e": True, "f": "a=b", "g": 0.5}
    assert common.parse_sets(None) == {}
    with pytest.raises(common.UserError, match="KEY=VALUE, got 'novalue'"):
        common.parse_sets(["novalue"])


def test_read_input_prefers_arguments_then_file_then_stdin(tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("one\u2028still one\r\ntwo\n", encoding="utf-8")
    assert common.read_input(["x", ""], path) == ["x", ""]
    assert common.read_input(None, path) == ["one\u2028still one", "two"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("a\x85b\nc\n".encode())))
    assert common.read_input(None, None) == ["a\x85b", "c"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xff\n")))
    with pytest.raises(common.UserError, match="stdin: line 2 is not valid UTF-8"):
        common.read_input(None, None)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    with pytest.raises(common.UserError, match="no input"):
        common.read_input(None, None)


def test_friendly_turns_user_errors_into_exit_1_and_lets_bugs_through(capsys):
    @common.friendly
    def config_error():
        raise ConfigError("config key 'x' must be >= 1, got [red]0[/red]")

    with pytest.raises(typer.Exit) as exit_:
        config_error()
    assert exit_.value.exit_code == 1
    assert "must be >= 1, got [red]0[/red]" in capsys.readouterr().err      # user text is text, never markup

    @common.friendly
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as exit_:
        interrupted()
    assert exit_.value.exit_code == 130

    @common.friendly
    def bug():
        raise ZeroDivisionError("a real bug")

    with pytest.raises(ZeroDivisionError):                  # a bug is not dressed up as a user error
        bug()


def test_train_options_not_given_leave_the_config_alone(cli, monkeypatch, tmp_path):
    """A train command hands only the options given (and --set items) to the setup, as dotted overrides."""
    seen = []

    def make_setup(task, preset="base", config_file=None, overrides=None):
        seen.append((task, preset, config_file, overrides))
        raise common.UserError("stop here")

    monkeypatch.setattr(tasks, "make_setup", make_setup)
    cli.one_line_error(cli.run("train", "translate", "--out", tmp_path / "a"), "stop here")
    cli.one_line_error(cli.run("train", "translate", "--out", tmp_path / "b", "--preset", "tiny", "--cell", "lstm",
                               "--max-steps", 7, "--accumulate", 2, "--set", "train.seed=3"), "stop here")
    cli.one_line_error(cli.run("train", "charlm", "--out", tmp_path / "c", "--impl", "scratch"), "stop here")
    assert seen[0] == ("translate", "base", None, {})
    assert seen[1] == ("translate", "tiny", None, {"model.encoder.cell": "lstm", "train.accumulate": 2,
                                                   "train.max_steps": 7, "train.seed": 3})
    assert seen[2] == ("charlm", "base", None, {"model.rnn.impl": "scratch"})
