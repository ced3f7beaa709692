"""Issue 16's property: whatever Unicode text a use command reads, line by line (every line-separator character
of str.splitlines inside lines, NUL, control and combining characters, CRLF endings, blank lines, with or without
a final newline), it exits 0 without a traceback and prints one line per line it read.

Commands: translate, tag, summarize --input-lines, tokenizer encode and, where the task exists, classify, each
with the session's tiny model (tests/conftest.py), reading stdin or a file. A lone \\r inside a line is drawn for
stdin only: files are split at it (a library bug, test_a_lone_carriage_return_in_a_file in test_cli_faults.py).
"""
from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEPARATORS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
PLAIN = "der Hund läuft im Park"          # one ordinary line in every input: each command has something to work on


def line_text(carriage_return: bool = True):
    """Any text without \\n; `carriage_return`: lone \\r too (see the xfail test of files holding one in
    tests/faults/test_cli_faults.py: a file read by --input is split at a lone \\r)."""
    specials = [*SEPARATORS, "\t", " ", "\x00", "\ufeff", "\u0301"] + (["\r"] if carriage_return else [])
    excluded = "\n" if carriage_return else "\n\r"
    return st.text(st.one_of(st.characters(exclude_characters=excluded, exclude_categories=("Cs",)),
                             st.sampled_from(specials)), max_size=30)


@st.composite
def inputs(draw, carriage_return: bool = True) -> tuple[list[str], str]:
    """(the lines, the text holding them): lines joined by \\n or \\r\\n, a final line ending or not."""
    lines = draw(st.lists(line_text(carriage_return), max_size=5))
    lines.insert(draw(st.integers(0, len(lines))), PLAIN)
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    final = draw(st.booleans()) or lines[-1] == ""           # a blank last line needs its line ending
    return lines, ending.join(lines) + (ending if final else "")


PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def check_lines(result, lines: list[str]) -> None:
    assert result.exit_code == 0 and result.exception is None, f"{result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output
    printed = result.stdout
    assert printed.endswith("\n"), repr(printed)
    assert len(printed[:-1].split("\n")) == len(lines), (lines, printed)


def run_on(cli, args: tuple, data, via_file: bool) -> tuple:
    """(the lines, the command's result reading them from stdin, or from a file given as `--input`)."""
    lines, text = data.draw(inputs(carriage_return=not via_file))
    if not via_file:
        return lines, cli.run(*args, input=text)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.txt"
        path.write_bytes(text.encode("utf-8"))
        return lines, cli.run(*args, "--input", path)


@PROPERTY
@given(data=st.data(), via_file=st.booleans())
def test_translate_prints_one_line_per_line(cli, translate_model, data, via_file):
    check_lines(*reversed(run_on(cli, ("translate", "-m", translate_model.checkpoint, "--beam", 1), data, via_file)))


@PROPERTY
@given(data=st.data(), via_file=st.booleans())
def test_tag_prints_one_line_per_line(cli, tag_model, data, via_file):
    check_lines(*reversed(run_on(cli, ("tag", "-m", tag_model.checkpoint), data, via_file)))


@PROPERTY
@given(case=inputs(carriage_return=False))
def test_summarize_input_lines_prints_one_summary_per_line(cli, summarize_model, case):
    lines, text = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "docs.txt"
        path.write_bytes(text.encode("utf-8"))
        result = cli.run("summarize", "-m", summarize_model.checkpoint, "--beam", 1, "--max-len", 5,
                         "--input-lines", path)
    check_lines(result, lines)


@PROPERTY
@given(data=st.data(), via_file=st.booleans(), ids=st.booleans())
def test_tokenizer_encode_prints_one_line_per_line(cli, translate_model, data, via_file, ids):
    args = ("tokenizer", "encode", "-m", translate_model.checkpoint) + (("--ids",) if ids else ())
    check_lines(*reversed(run_on(cli, args, data, via_file)))


# --- classify, where the task exists -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classify_model(cli, tmp_path_factory) -> Path:
    """A tiny sentiment model on toy LABEL TEXT lines (as tests/cli/test_classify.py trains one)."""
    from nmt.tasks import TASKS
    if "classify" not in TASKS:
        pytest.skip("no classify task in nmt.tasks.TASKS")
    rng = random.Random(0)
    positive, negative = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "poor", "dull", "boring"]
    filler = ["the", "film", "was", "a", "and", "plot", "acting", "story"]
    root = tmp_path_factory.mktemp("classify")
    for name, n in (("train.txt", 200), ("dev.txt", 30)):
        rows = []
        for _ in range(n):
            label = rng.randint(0, 1)
            words = rng.choices(filler, k=rng.randint(1, 4)) + [rng.choice(positive if label else negative)]
            rows.append(f"{'pos' if label else 'neg'} {' '.join(words)}")
        (root / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = cli.run("train", "classify", "--train-file", root / "train.txt", "--dev-file", root / "dev.txt",
                     "--preset", "tiny", "--max-steps", 20, "--out", root / "run", "--set", "train.threads=1")
    assert result.exit_code == 0, result.output
    return root / "run" / "best.pt"


@PROPERTY
@given(data=st.data(), via_file=st.booleans())
def test_classify_prints_one_line_per_line(cli, classify_model, data, via_file):
    check_lines(*reversed(run_on(cli, ("classify", "-m", classify_model), data, via_file)))
