"""The `nmt` command line: one small file per task (its use, train and evaluate commands), tools.py (data,
tokenizer, info, export), pictures.py (gradients, plot, copy task), cost.py (time and memory against T), common.py
(apps, shared options, errors, the train tail) and render.py (Rich tables and pictures). The only package that
knows about the terminal.
"""
from __future__ import annotations

import os
import sys

from nmt import allocator

allocator.configure()      # before torch loads: a CLI process is one workload, the settings pay off (allocator.py)

from nmt.cli import translate, generate, tag, summarize, forecast, classify, namegen, tools, pictures, cost, serve  # noqa: E402,F401,I001  (register commands)
from nmt.cli.common import app  # noqa: E402


def main() -> None:
    """Run the app, then exit without the interpreter's teardown: unloading torch takes longer (about half a
    second here) than most commands need after their work is done. Output is flushed first, and every file the
    commands write is closed (and checkpoints fsynced) before they return. NMT_FAST_EXIT=0 exits normally."""
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:          # e.g. piped into `head`
        pass
    except OSError as exc:           # e.g. stdout is /dev/full
        os.write(2, f"error: cannot write the output: {exc.strerror}\n".encode())
        code = code or 1
    if os.environ.get("NMT_FAST_EXIT", "1") == "0":
        sys.exit(code or 0)
    os._exit(code or 0)
