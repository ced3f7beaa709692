"""nmt/threads.py: torch threads per workload, NMT_THREADS and --threads."""
import os

import pytest
import torch

from nmt import threads


@pytest.fixture
def no_request(monkeypatch):
    monkeypatch.delenv("NMT_THREADS", raising=False)
    kept = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(kept)


def test_step_work_uses_one_thread_and_batch_work_the_cores(no_request, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.0, 0.0))
    assert threads.choose("step") == 1
    assert threads.choose("batch") == 8 and threads.choose("batch", processes=3) == 2
    assert threads.choose("step", explicit=3) == 3 and threads.choose("batch", explicit=1) == 1
    assert threads.use("step") == 1 and torch.get_num_threads() == 1


def test_nmt_threads_overrides_the_choice(no_request):
    no_request.setenv("NMT_THREADS", "2")
    assert threads.choose("step") == 2 and threads.choose("batch") == 2
    assert threads.choose("step", explicit=1) == 1                   # a setting of the run itself wins
    no_request.setenv("NMT_THREADS", "0")
    assert threads.choose("step") == 1
    for bad in ("two", "-1", "1.5", "5000"):
        no_request.setenv("NMT_THREADS", bad)
        with pytest.raises(threads.ThreadsError, match="NMT_THREADS"):
            threads.choose("step")


def test_cli_threads_option_and_bad_environment(cli, no_request):
    result = cli.run("--threads", "1", "data", "stats", "--help")
    assert result.exit_code == 0
    assert "NMT_THREADS" not in os.environ                      # restored after the command
    no_request.setenv("NMT_THREADS", "many")
    cli.one_line_error(cli.run("generate", "-n", "5"), "NMT_THREADS")
    bad = cli.run("--threads", "-2", "generate", "-n", "5")
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_batch_work_leaves_the_cores_that_others_keep_busy(no_request, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for load, expected in ((0.2, 2), (0.9, 1), (1.4, 1), (7.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert threads.choose("batch") == expected
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.6, 0.0, 0.0))
    assert threads.choose("batch") == 12 and threads.choose("batch", processes=4) == 4
