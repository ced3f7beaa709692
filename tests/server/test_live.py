"""A real server over real sockets: a client that leaves stops the work it asked for (whole and streamed), and
`python cli.py serve` starts, answers and stops on Ctrl-C."""
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from nmt.server.app import create_app
from nmt.server.settings import ServeSettings
from tests.server.conftest import REPO, live_server, pick


def steps_run(url: str) -> int:
    return httpx.get(url + "/v1/stats").json()["models"]["charlm"]["items"]


def settles(url: str, seconds: float = 10.0) -> int:
    """The count of jobs run once it stops changing (it must, within `seconds`)."""
    deadline, last = time.monotonic() + seconds, steps_run(url)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = steps_run(url)
        if now == last:
            return now
        last = now
    raise AssertionError("the model kept working after its client left")


@pytest.fixture(scope="module")
def url(runners):
    pick(runners, "charlm")
    app = create_app(ServeSettings(max_generate=10_000, timeout_s=60), runners={"charlm": runners["charlm"]})
    with live_server(app) as base:
        yield base


def spec_2_4(app):
    """`app` told it runs on an ASGI 2.4 server: Starlette then no longer listens for the disconnect itself."""
    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            scope = {**scope, "asgi": {**scope.get("asgi", {}), "spec_version": "2.4"}}
        await app(scope, receive, send)
    return wrapped


@pytest.fixture(scope="module")
def url_2_4(runners):
    pick(runners, "charlm")
    app = create_app(ServeSettings(max_generate=10_000, timeout_s=60), runners={"charlm": runners["charlm"]})
    with live_server(spec_2_4(app)) as base:
        yield base


def test_a_client_that_leaves_a_whole_answer_stops_its_work(url):
    before = steps_run(url)
    with httpx.Client(timeout=0.5) as client, pytest.raises(httpx.TimeoutException):
        client.post(url + "/v1/generate", json={"length": 10_000, "seed": 1})
    ran = settles(url) - before
    assert 0 < ran < 10_000 / 64 / 2           # 157 jobs of 64 steps make the whole text; far fewer ran
    time.sleep(1.0)
    assert steps_run(url) - before == ran


@pytest.mark.parametrize("server", ["url", "url_2_4"])
def test_a_client_that_leaves_a_stream_stops_its_work(server, request):
    url = request.getfixturevalue(server)
    before = steps_run(url)
    body = {"length": 10_000, "stream": True}
    with httpx.Client(timeout=30) as client, client.stream("POST", url + "/v1/generate", json=body) as response:
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]                # three events
    assert all(line.startswith("data: ") or not line for line in got)
    ran = settles(url) - before
    assert 3 <= ran < 10_000 / 8 / 2               # 1,250 events make the whole text
    time.sleep(1.0)
    assert steps_run(url) - before == ran


def test_a_stream_grows_over_real_http(url):
    body = {"length": 64, "seed": 2, "stream": True}
    with httpx.Client(timeout=30) as client, client.stream("POST", url + "/v1/generate", json=body) as response:
        arrivals = [time.monotonic() for line in response.iter_lines() if line.startswith("data: ")]
    assert len(arrivals) == 64 // 8 + 1                    # eight chunks and the done event
    assert arrivals[-1] > arrivals[0]


def test_the_serve_command_starts_answers_and_stops_on_ctrl_c(runners):
    pick(runners, "tag")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "cli.py", "serve", "--port", "0", "--models", "tag", "--threads", "1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline, lines = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            found = re.search(r"ready in [\d.]+ s: tag on (http://127\.0\.0\.1:\d+/)", line)
            if found or proc.poll() is not None:
                break
        assert found, "".join(lines)
        answer = httpx.post(found.group(1) + "v1/tag", json={"text": "Angela Merkel visited Paris."}).json()
        assert {e["type"] for e in answer["entities"]} == {"PER", "LOC"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_checkpoint_that_fails_to_load_stops_the_server_with_one_error_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    done = subprocess.run([sys.executable, "cli.py", "serve", "--port", "0", "--models", f"tag={bad}"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {bad} is not a readable nmt checkpoint")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("client", ["httpx", "raw"])
def test_the_load_bench_drives_a_real_server_without_errors(runners, client):
    """bench/serve_load.py's load generator (both clients) against a live tagging server: 16 concurrent
    connections for a second, every answer a 200, latencies measured."""
    import asyncio

    from bench.serve_load import BODIES, load
    app = create_app(ServeSettings(), runners=pick(runners, "tag"))
    with live_server(app) as base:
        point = asyncio.run(load(base, "/v1/tag", BODIES["tag"], 16, 1.0, 10_000, client))
    assert point["errors"] == 0 and point["requests"] >= 16
    assert 0 < point["p50_ms"] <= point["p99_ms"] and point["client_cpu_ms"] > 0
