"""nmt/cli/__init__.py: `main()` in a real process (exit status, output through a pipe, the fast exit) and the
memory settings the command line applies at import, which a library import of nmt leaves alone."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# run main() as `nmt ARGS`; the atexit line shows whether the interpreter's teardown ran
MAIN = ("import atexit, sys; atexit.register(lambda: print('teardown ran', file=sys.stderr, flush=True)); "
        "sys.argv = ['nmt'] + sys.argv[1:]; from nmt.cli import main; main()")


def nmt(*args, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("NMT_FAST_EXIT", "THP_MEM_ALLOC_ENABLE")}
    return subprocess.run([sys.executable, "-c", MAIN, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={**environ, "OMP_NUM_THREADS": "1", **env}, timeout=120)


def test_success_exits_0_with_all_output_through_the_pipe(translate_model):
    result = nmt("info", translate_model.checkpoint, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["task"] == "translate"          # flushed before the fast exit
    assert "teardown ran" not in result.stderr                        # os._exit: no interpreter teardown


def test_a_user_error_exits_1_with_one_line(tmp_path):
    result = nmt("info", tmp_path / "missing.pt")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: checkpoint not found: {tmp_path / 'missing.pt'}"
    assert result.stdout == ""


@pytest.mark.parametrize("args", [("translate", "--no-such-option"), ("no-such-command",),
                                  ("translate", "--beam", "many")])
def test_a_usage_error_exits_2(args):
    result = nmt(*args)
    assert result.returncode == 2 and "Usage" in result.stderr and "Traceback" not in result.stderr


def test_fast_exit_can_be_turned_off(tmp_path):
    result = nmt("info", tmp_path / "missing.pt", NMT_FAST_EXIT="0")
    assert result.returncode == 1 and result.stderr.startswith("error: checkpoint not found")
    assert "teardown ran" in result.stderr                            # a normal interpreter exit, same status


ALLOCATOR = ("import os, nmt, torch, nmt.tasks, nmt.training; print(os.environ.get('THP_MEM_ALLOC_ENABLE')); "
             "import nmt.cli; print(os.environ.get('THP_MEM_ALLOC_ENABLE'))")


@pytest.mark.parametrize("opt_out", [False, True], ids=["default", "NMT_ALLOCATOR=system"])
def test_only_the_command_line_configures_the_allocator(opt_out):
    """`import nmt, torch` (and the library) changes nothing; `import nmt.cli` sets the huge-page allocation
    unless NMT_ALLOCATOR=system."""
    env = {k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", "NMT_ALLOCATOR")}
    if opt_out:
        env["NMT_ALLOCATOR"] = "system"
    result = subprocess.run([sys.executable, "-c", ALLOCATOR], env=env, capture_output=True, text=True, check=True,
                            cwd=REPO, timeout=120)
    library, command_line = result.stdout.split()
    assert library == "None"
    assert command_line == ("None" if opt_out else "1")
