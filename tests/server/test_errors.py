"""Every error answer: its status, its JSON body naming the field or the limit, and never a traceback."""
import threading
import time

import pytest

from tests.server.conftest import pick, served


def error_of(response, status: int, kind: str, field=None, limit=None) -> dict:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    error = response.json()["error"]
    assert error["type"] == kind and error["message"]
    assert error.get("field") == field and error.get("limit") == limit, error
    return error


@pytest.fixture(scope="module")
def client(runners):
    with served({**runners}, max_items=4, max_chars=100, max_generate=200, max_rows=50) as c:
        yield c


@pytest.mark.parametrize("body, field", [
    ({"text": "a", "beam": 0}, "beam"),                  # the range lives in DecodeConfig
    ({"text": "a", "beam": 2, "n_best": 3}, "n_best"),   # DecodeConfig's own check
    ({"text": "a", "length_penalty": -1}, "length_penalty"),
    ({"text": "a", "beam": "five"}, "beam"),             # the type, checked by the schema
    ({"texts": ["a", 3]}, "texts.1"),
    ({"text": "a", "attention": "very"}, "attention"),
])
def test_bad_options_are_422_naming_the_field(client, runners, body, field):
    pick(runners, "translate")
    error_of(client.post("/v1/translate", json=body), 422, "invalid_option", field=field)


def test_unknown_fields_bad_json_and_no_input_are_422(client):
    error = error_of(client.post("/v1/classify", json={"text": "a", "beem": 3}), 422, "unknown_field", field="beem")
    assert "beem" in error["message"]
    error = error_of(client.post("/v1/classify", content=b'{"text": "a",'), 422, "invalid_json")
    assert "not valid JSON" in error["message"]
    error_of(client.post("/v1/classify", content=b"[1, 2]"), 422, "invalid_json")
    error_of(client.post("/v1/classify", content=b""), 422, "invalid_json")
    error_of(client.post("/v1/classify", json={}), 422, "invalid_input", field="text")
    error_of(client.post("/v1/classify", json={"text": "a", "texts": ["b"]}), 422, "invalid_input", field="text")
    error_of(client.post("/v1/classify", json={"text": "a", "top": -1}), 422, "invalid_option", field="top")


def test_any_content_type_is_read_as_json(client):
    """curl -d sends form encoding; the body is JSON all the same."""
    response = client.post("/v1/classify", content=b'{"text": "a good film"}',
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200 and response.json()["label"] in ("neg", "pos")


def test_task_specific_checks_are_422(client, runners):
    error_of(client.post("/v1/forecast", json={"history": [[1.0, 2.0]] * 30}), 422, "invalid_input", field="history")
    error_of(client.post("/v1/forecast", json={"history": [[1.0, 2.0, 3.0]] * 5}), 422, "invalid_input",
             field="history")
    error_of(client.post("/v1/forecast", json={"history": [[1.0, "x", 3.0]] * 30}), 422, "invalid_option",
             field="history.0.1")
    error = error_of(client.post("/v1/namegen", json={"condition": "Klingon", "num_samples": 2}), 422, "invalid_input",
                     field="condition")
    assert "German" in error["message"]
    error_of(client.post("/v1/namegen", json={"condition": "German", "length": 201}), 413, "too_large",
             field="length", limit="max_generate")
    error_of(client.post("/v1/namegen", json={"condition": "German", "num_samples": 5}), 413, "too_large",
             field="num_samples", limit="max_items")
    pick(runners, "charlm")
    error_of(client.post("/v1/generate", json={"temperature": -1}), 422, "invalid_option", field="temperature")
    error_of(client.post("/v1/generate", json={"top_p": 0}), 422, "invalid_option", field="top_p")


def test_too_much_input_is_413_naming_the_limit(client, runners):
    error = error_of(client.post("/v1/classify", json={"texts": ["a"] * 5}), 413, "too_large", field="texts",
                     limit="max_items")
    assert "4" in error["message"]
    error_of(client.post("/v1/classify", json={"text": "a" * 101}), 413, "too_large", field="text", limit="max_chars")
    error_of(client.post("/v1/classify", json={"texts": ["ok", "a" * 101]}), 413, "too_large", field="texts",
             limit="max_chars")
    error_of(client.post("/v1/forecast", json={"history": [[0.0] * 3] * 51}), 413, "too_large", field="history",
             limit="max_rows")
    error_of(client.post("/v1/classify", content=b'{"text": "' + b"a" * (2 << 20) + b'"}'), 413, "too_large",
             limit="max_body")
    pick(runners, "charlm")
    error_of(client.post("/v1/generate", json={"length": 201}), 413, "too_large", field="length",
             limit="max_generate")
    error_of(client.post("/v1/generate", json={"prime": "x" * 101}), 413, "too_large", field="prime",
             limit="max_chars")
    error_of(client.post("/v1/generate", json={"num_samples": 5}), 413, "too_large", field="num_samples",
             limit="max_items")


def test_a_chunked_body_over_the_limit_is_413(client):
    def body():
        for _ in range(40):
            yield b"x" * (64 << 10)
    error_of(client.post("/v1/classify", content=body()), 413, "too_large", limit="max_body")


def test_unknown_paths_and_methods_are_json(client):
    error_of(client.get("/v1/nothing"), 404, "not_found")
    error_of(client.get("/v1/classify"), 405, "method_not_allowed")


def test_a_full_queue_is_503_with_retry_after(fake_tagger):
    with served({"tag": fake_tagger}, max_queue=2, max_batch=1, max_wait_ms=0) as client:
        fake_tagger.gate.clear()
        fake_tagger.entered.clear()
        results = {}

        def send(name, texts):
            results[name] = client.post("/v1/tag", json={"texts": texts})
        first = threading.Thread(target=send, args=("first", ["a", "b"]))
        first.start()
        assert fake_tagger.entered.wait(10)                 # "a" runs, "b" waits: the queue holds 2
        refused = client.post("/v1/tag", json={"text": "c"})
        error_of(refused, 503, "busy", limit="max_queue")
        assert int(refused.headers["retry-after"]) >= 1
        fake_tagger.gate.set()
        first.join(10)
        assert results["first"].status_code == 200
        assert client.post("/v1/tag", json={"text": "c"}).status_code == 200
        assert client.get("/v1/stats").json()["models"]["tag"]["rejected"] == 1


def test_a_slow_answer_is_504_and_its_queued_work_is_dropped(fake_tagger):
    with served({"tag": fake_tagger}, timeout_s=0.3, max_batch=1, max_wait_ms=0) as client:
        fake_tagger.gate.clear()
        fake_tagger.calls.clear()
        started = time.monotonic()
        error_of(client.post("/v1/tag", json={"texts": ["a", "b", "c"]}), 504, "timeout", limit="timeout_s")
        assert time.monotonic() - started < 5
        fake_tagger.gate.set()
        assert client.post("/v1/tag", json={"text": "d"}).status_code == 200
        assert fake_tagger.calls == [1, 1]                  # "a" ran (it had started), "b" and "c" never did
        assert client.get("/v1/stats").json()["models"]["tag"]["dropped"] == 2


def test_an_unexpected_failure_is_a_500_without_details(fake_tagger):
    with served({"tag": fake_tagger}) as client:
        error = error_of(client.post("/v1/tag", json={"text": "boom"}), 500, "internal")
        assert "secret" not in error["message"] and "boom" not in error["message"]
        assert client.post("/v1/tag", json={"text": "fine"}).status_code == 200


def test_one_failing_input_fails_its_own_request_only(fake_tagger):
    """A batch that fails is rerun one input at a time, so the other requests in it still get their answers."""
    with served({"tag": fake_tagger}, max_wait_ms=200) as client:
        results = {}

        def send(text):
            results[text] = client.post("/v1/tag", json={"text": text})
        threads = [threading.Thread(target=send, args=(t,)) for t in ("good one", "boom", "good two")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results["boom"].status_code == 500
        assert results["good one"].status_code == 200 and results["good two"].status_code == 200
