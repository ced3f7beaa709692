"""Helpers for tests that drive the CLI through Typer's CliRunner."""
from __future__ import annotations

import torch
from typer.testing import CliRunner

from nmt.cli import app

runner = CliRunner()


def run(*args, input=None):
    """Invoke the app; `train` commands set torch's thread count, so the test process's count is restored."""
    threads = torch.get_num_threads()
    try:
        return runner.invoke(app, [str(a) for a in args], input=input)
    finally:
        torch.set_num_threads(threads)


def one_line_error(result, *needles):
    """Exit status 1 and exactly one `error:` line on stderr holding each needle, no traceback."""
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in message, message
