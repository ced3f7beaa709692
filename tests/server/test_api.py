"""Every endpoint through FastAPI's TestClient: one input and a list, the CLI's options and defaults, the answers'
shapes; /health, /v1/models, /v1/stats, the page and the API docs."""
import json

import pytest

from nmt.config import DecodeConfig, SummaryDecodeConfig
from tests.server.conftest import pick, served

GERMAN = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Eine Frau mit einem roten Hut liest ein Buch."]


@pytest.fixture(scope="module")
def client(runners):
    with served(runners) as c:
        yield c


def test_translate_one_and_a_list_equal_the_library_with_the_cli_defaults(client, runners):
    translator = pick(runners, "translate")["translate"]
    expected = translator.translate(GERMAN, DecodeConfig())          # beam 5, as `nmt translate`
    one = client.post("/v1/translate", json={"text": GERMAN[0]})
    assert one.status_code == 200
    assert one.json()["translation"] == expected[0] and one.json()["model"] == "translate"
    many = client.post("/v1/translate", json={"texts": GERMAN}).json()
    assert many["translations"] == expected
    assert [r["translation"] for r in many["results"]] == expected and not many["results"][0]["truncated"]


def test_translate_options_n_best_and_attention(client, runners):
    pick(runners, "translate")
    greedy = client.post("/v1/translate", json={"text": GERMAN[1], "beam": 1}).json()
    assert greedy["translation"] == runners["translate"].translate([GERMAN[1]], DecodeConfig(beam=1))[0]
    nbest = client.post("/v1/translate", json={"text": GERMAN[1], "beam": 4, "n_best": 3, "confidence": True}).json()
    assert len(nbest["n_best"]) == 3 and nbest["n_best"][0]["translation"] == nbest["translation"]
    assert nbest["n_best"][0]["score"] >= nbest["n_best"][1]["score"] >= nbest["n_best"][2]["score"]
    assert nbest["confidence"] <= 0 and "confidence" not in greedy
    att = client.post("/v1/translate", json={"text": GERMAN[0], "attention": True}).json()["attention"]
    assert len(att["weights"]) == len(att["target"]) and all(len(row) == len(att["source"]) for row in att["weights"])
    assert att["target"][-1] == "</s>" and all(abs(sum(row) - 1) < 1e-3 for row in att["weights"])
    assert "attention" not in client.post("/v1/translate", json={"text": GERMAN[0]}).json()


def test_translate_keeps_empty_lines(client, runners):
    pick(runners, "translate")
    answer = client.post("/v1/translate", json={"texts": ["", GERMAN[0], "  "]}).json()
    assert answer["translations"][0] == "" and answer["translations"][2] == "" and answer["translations"][1]


def test_tag_gives_entities_with_offsets(client, runners):
    pick(runners, "tag")
    text = "Angela Merkel met Emmanuel Macron in Paris."
    answer = client.post("/v1/tag", json={"text": text}).json()
    expected = runners["tag"].tag_text([text])[0]
    assert answer["entities"] == expected["entities"] and answer["tags"] == expected["tags"]
    found = {(e["text"], e["type"]) for e in answer["entities"]}
    assert ("Angela Merkel", "PER") in found and ("Paris", "LOC") in found
    assert all(text[e["start"]:e["end"]] == e["text"] for e in answer["entities"])
    many = client.post("/v1/tag", json={"texts": [text, "", "Paris"]}).json()
    assert len(many["results"]) == 3 and many["results"][1]["entities"] == []
    assert many["results"][0]["entities"] == answer["entities"]


def test_summarize_with_the_cli_defaults(client, runners):
    summarizer = pick(runners, "summarize")["summarize"]
    doc = "Hi team, the quarterly budget meeting is moved to Friday afternoon. Please confirm."
    assert client.post("/v1/summarize", json={"text": doc}).json()["summary"] == \
        summarizer.summarize([doc], SummaryDecodeConfig())[0]
    many = client.post("/v1/summarize", json={"texts": [doc, doc], "beam": 1, "max_len": 5}).json()
    assert many["summaries"][0] == many["summaries"][1] and len(many["summaries"][0].split()) <= 5


def test_generate_whole_is_reproducible_with_a_seed_and_says_its_seed(client, runners):
    pick(runners, "charlm")
    body = {"prime": "ROMEO:", "length": 30, "seed": 7}
    a, b = client.post("/v1/generate", json=body).json(), client.post("/v1/generate", json=body).json()
    assert a["text"] == b["text"] and len(a["text"]) == 30 and a["seed"] == 7 and a["prime"] == "ROMEO:"
    unseeded = client.post("/v1/generate", json={"length": 5}).json()
    assert isinstance(unseeded["seed"], int) and len(unseeded["text"]) == 5
    again = client.post("/v1/generate", json={"length": 5, "seed": unseeded["seed"]}).json()
    assert again["text"] == unseeded["text"]
    several = client.post("/v1/generate", json={"length": 12, "num_samples": 3, "seed": 1}).json()
    assert len(several["samples"]) == 3 and all(len(s) == 12 for s in several["samples"])


def events(text: str) -> list[tuple[str, dict]]:
    """Server-sent events -> [(event, data)]."""
    out = []
    for block in filter(None, text.split("\n\n")):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def test_generate_streams_a_few_characters_an_event_then_done(client, runners):
    pick(runners, "charlm")
    body = {"prime": "ROMEO:", "length": 50, "seed": 3}
    whole = client.post("/v1/generate", json=body).json()["text"]
    with client.stream("POST", "/v1/generate", json={**body, "stream": True}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        got = events(response.read().decode())
    chunks = [data["text"] for event, data in got if event == "message"]
    assert len(chunks) == 7 and all(1 <= len(c) <= 8 for c in chunks)    # 50 characters, 8 an event
    assert "".join(chunks) == whole
    assert got[-1] == ("done", {"text": whole, "samples": [whole], "prime": "ROMEO:", "seed": 3})


def test_classify_and_forecast(client, runners):
    answer = client.post("/v1/classify", json={"text": "a good film", "attention": True}).json()
    assert answer["label"] in ("neg", "pos") and abs(sum(answer["probabilities"].values()) - 1) < 1e-5
    assert answer["steps"] == ["a", "good", "film"] and len(answer["attention"]) == 3
    top = client.post("/v1/classify", json={"texts": ["a bad film", ""], "top": 1}).json()
    assert len(top["results"][0]["probabilities"]) == 1 and top["labels"][1] is None
    history = [[float(t % 24), 1.0, -float(t)] for t in range(40)]
    forecast = client.post("/v1/forecast", json={"history": history}).json()
    assert len(forecast["forecast"]) == 12 and all(len(row) == 3 for row in forecast["forecast"])
    assert forecast["columns"] == ["a", "b", "c"] and forecast["lookback"] == 24
    import numpy as np
    direct = runners["forecast"].forecast(np.asarray(history))
    assert np.allclose(forecast["forecast"], direct)
    assert len(client.post("/v1/forecast", json={"histories": [history, history[5:]]}).json()["forecasts"]) == 2


def test_namegen_samples_names_per_condition(client, runners):
    body = {"condition": "german", "num_samples": 4, "seed": 5, "length": 12}
    one = client.post("/v1/namegen", json=body).json()
    assert len(one["names"]) == 4 and all(len(n) <= 12 for n in one["names"])
    assert client.post("/v1/namegen", json=body).json()["names"] == one["names"]           # the seed
    from nmt.config import SampleConfig
    direct = runners["namegen"].sample("german", SampleConfig(num_samples=4, length=12), 5)
    assert one["names"] == direct and one["condition"] == "German" and len(one["in_training"]) == 4
    many = client.post("/v1/namegen", json={"conditions": ["German", "Italian"], "num_samples": 2}).json()
    assert [len(r["names"]) for r in many["results"]] == [2, 2] and many["results"][1]["condition"] == "Italian"


def test_health_models_stats_page_and_docs(client, runners):
    assert client.get("/health").json()["status"] == "ready"
    models = {m["task"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == set(runners)
    if "translate" in models:
        m = models["translate"]
        assert m["endpoint"] == "/v1/translate" and m["scores"]["test_2016_bleu_beam5"] > 30
        assert m["parameters"] > 1_000_000
    assert models["forecast"]["columns"] == ["a", "b", "c"] and models["classify"]["labels"] == ["neg", "pos"]
    assert models["namegen"]["conditions"] == ["German", "Italian"] and models["namegen"]["endpoint"] == "/v1/namegen"
    stats = client.get("/v1/stats").json()
    assert stats["rss_mb"] > 0 and set(stats["models"]) == set(runners)
    page = client.get("/")
    assert page.status_code == 200 and "<title>" in page.text and "/v1/translate" in page.text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/translate", "/v1/tag", "/v1/classify", "/v1/forecast", "/health"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_health_is_503_until_the_models_are_loaded(runners, monkeypatch):
    """Loading is held at a gate: /health says loading (503, Retry-After), then ready."""
    import threading

    from fastapi.testclient import TestClient

    from nmt.server import app as app_module
    from nmt.server.app import create_app
    from nmt.server.settings import ServeSettings
    gate = threading.Event()
    real = app_module.warm_up

    def held(*args):
        assert gate.wait(30)
        real(*args)
    monkeypatch.setattr(app_module, "warm_up", held)
    with TestClient(create_app(ServeSettings(), runners={"classify": runners["classify"]})) as client:
        loading = client.get("/health")
        assert loading.status_code == 503 and loading.json()["status"] == "loading"
        assert loading.headers["retry-after"] == "1"
        early = client.post("/v1/classify", json={"text": "good"})
        assert early.status_code == 503 and early.json()["error"]["type"] == "loading"
        gate.set()
        from tests.server.conftest import wait_ready
        wait_ready(client.get)
        assert client.post("/v1/classify", json={"text": "good"}).status_code == 200


def test_only_the_served_tasks_have_routes(runners):
    with served({"classify": runners["classify"]}) as client:
        assert client.post("/v1/translate", json={"text": "x"}).status_code == 404
        assert [m["task"] for m in client.get("/v1/models").json()["models"]] == ["classify"]
