"""`serve` through CliRunner: the settings its options build, the warning for a public address, and one-line
errors for bad options, unknown tasks, missing checkpoints and a busy port (the server itself is stubbed)."""
import socket

import pytest

from nmt.server.settings import ServeSettings, parse_models


@pytest.fixture
def started(monkeypatch) -> list:
    """Stub the server: record (settings, listening port, access_log) instead of serving."""
    calls = []

    def fake_serve(settings, sock, access_log):
        calls.append((settings, sock.getsockname()[1], access_log))
        sock.close()
    monkeypatch.setattr("nmt.cli.serve._serve", fake_serve)
    monkeypatch.setattr("nmt.cli.serve._serve_workers", fake_serve)
    return calls


def test_defaults_come_from_the_settings(cli, started):
    result = cli.run("serve", "--port", "0")
    assert result.exit_code == 0, result.output
    settings, port, access_log = started[0]
    assert settings.host == "127.0.0.1" and port > 0 and not access_log
    assert settings.max_batch == ServeSettings().max_batch and settings.models == {}
    assert "warning" not in result.stderr


def test_options_reach_the_settings(cli, started, tmp_path):
    model = tmp_path / "ner.pt"
    model.write_bytes(b"not read yet")
    result = cli.run("serve", "--port", "0", "--models", f"translate,tag={model}", "--max-batch", "1",
                     "--max-wait-ms", "2", "--max-queue", "10", "--max-items", "3", "--max-chars", "50",
                     "--max-generate", "99", "--timeout", "1.5", "--threads", "1", "--workers", "2", "--access-log")
    assert result.exit_code == 0, result.output
    settings, _, access_log = started[0]
    assert settings.models["tag"] == str(model) and settings.models["translate"].endswith("everyday-de-en.pt")
    assert (settings.max_batch, settings.max_wait_ms, settings.max_queue, settings.max_items, settings.max_chars,
            settings.max_generate, settings.timeout_s, settings.threads, settings.workers) == \
        (1, 2.0, 10, 3, 50, 99, 1.5, 1, 2)
    assert access_log


def test_a_public_address_warns(cli, started):
    result = cli.run("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 0 and "warning:" in result.stderr and "0.0.0.0" in result.stderr
    assert cli.run("serve", "--host", "localhost", "--port", "0").stderr == ""


@pytest.mark.parametrize("args, needle", [
    (["--max-batch", "0"], "max_batch"),
    (["--timeout", "0"], "timeout_s"),
    (["--workers", "0"], "workers"),
    (["--models", "nope"], "unknown task 'nope'"),
    (["--models", "tag,tag"], "named twice"),
    (["--models", "tag=/no/such.pt"], "checkpoint not found"),
])
def test_bad_options_are_one_line_errors(cli, started, args, needle):
    cli.one_line_error(cli.run("serve", "--port", "0", *args), needle)
    assert not started


def test_a_busy_port_is_a_one_line_error(cli, started):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cli.one_line_error(cli.run("serve", "--port", busy.getsockname()[1]), "cannot listen", "in use")
    assert not started


def test_public_addresses():
    assert not ServeSettings(host="127.0.0.1").public() and not ServeSettings(host="::1").public()
    assert not ServeSettings(host="localhost").public() and not ServeSettings(host="127.0.0.2").public()
    assert ServeSettings(host="0.0.0.0").public() and ServeSettings(host="192.168.1.5").public()
    assert ServeSettings(host="example.org").public()


def test_torch_threads_leave_a_core_to_the_http_side(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert ServeSettings().torch_threads() == 7 and ServeSettings(workers=4).torch_threads() == 1
    assert ServeSettings(threads=3).torch_threads() == 3
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert ServeSettings().torch_threads() == 1 and ServeSettings(workers=2).torch_threads() == 1


def test_settings_travel_to_worker_processes_as_json():
    settings = ServeSettings(port=9, max_batch=3, models=parse_models("tag"))
    assert ServeSettings.from_json(settings.to_json()) == settings
