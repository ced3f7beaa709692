"""Request batching: the Batcher on its own (gathering, limits, keys, cancellation, order), and through the app:
concurrent requests run as one batched call and get exactly the answers they get one at a time."""
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from nmt.server.batching import Batcher, QueueFull
from tests.server.conftest import pick, served


class Recorder:
    """A batched function that doubles its inputs and records each call's inputs (optionally held at a gate)."""

    def __init__(self):
        self.calls: list[list] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list, options) -> list:
        self.calls.append(list(items))
        assert self.gate.wait(10)
        return [(x * 2, options) for x in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_concurrent_submits_share_one_call_and_each_gets_its_own_result():
    async def main():
        rec = Recorder()
        b = Batcher("t", rec, max_batch=64, max_wait=0.2)
        b.start()
        answers = await asyncio.gather(*(b.submit([i], "opt", "k") for i in range(5)), b.submit([10, 11], "opt", "k"))
        await b.stop()
        return rec, answers, b.stats
    rec, answers, stats = run(main())
    assert rec.calls == [[0, 1, 2, 3, 4, 10, 11]]
    assert answers == [[(0, "opt")], [(2, "opt")], [(4, "opt")], [(6, "opt")], [(8, "opt")], [(20, "opt"), (22, "opt")]]
    assert stats.batches == 1 and stats.largest == 7 and stats.requests == 6


def test_max_batch_splits_and_keys_never_mix():
    async def main():
        rec = Recorder()
        b = Batcher("t", rec, max_batch=4, max_wait=0.2)
        b.start()
        await asyncio.gather(b.submit(list(range(10)), "x", "a"), b.submit([100, 101], "y", "b"))
        await b.stop()
        return rec
    rec = run(main())
    assert rec.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [100, 101]]


def test_a_lone_request_waits_at_most_max_wait():
    async def main():
        b = Batcher("t", Recorder(), max_wait=0.05)
        b.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await b.submit([1], None, "k")
        took = loop.time() - started
        await b.stop()
        return took
    assert run(main()) < 1.0


def test_cancelled_requests_never_run_and_free_their_queue_places():
    async def main():
        rec = Recorder()
        rec.gate.clear()
        b = Batcher("t", rec, max_batch=1, max_wait=0, max_queue=3)
        b.start()
        first = asyncio.ensure_future(b.submit([1], None, "k"))
        await asyncio.sleep(0.05)                            # 1 runs, held at the gate
        second = asyncio.ensure_future(b.submit([2, 3], None, "k"))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as full:
            await b.submit([4], None, "k")
        second.cancel()
        await asyncio.sleep(0.05)
        pending_after_cancel = b.pending
        rec.gate.set()
        assert await first == [(2, None)]
        assert await b.submit([5], None, "k") == [(10, None)]
        await b.stop()
        return rec, full.value, pending_after_cancel, b.stats
    rec, full, pending, stats = run(main())
    assert full.limit == 3 and full.retry_after >= 1
    assert pending == 1 and rec.calls == [[1], [5]] and stats.dropped == 2 and stats.rejected == 1


def test_solo_calls_run_alone_in_queue_order():
    async def main():
        rec, order = Recorder(), []
        b = Batcher("t", rec, max_wait=0)
        b.start()
        await asyncio.gather(b.call(lambda: order.append("solo1")), b.submit([1, 2], None, "k"),
                             b.call(lambda: order.append("solo2") or "done"))
        await b.stop()
        return rec, order
    rec, order = run(main())
    assert order == ["solo1", "solo2"] and rec.calls == [[1, 2]]


def test_a_failing_batch_is_rerun_one_input_at_a_time():
    def run_fn(items, options):
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return [x + 1 for x in items]

    async def main():
        b = Batcher("t", run_fn, max_wait=0.2)
        b.start()
        answers = await asyncio.gather(b.submit([1], None, "k"), b.submit([-1], None, "k"), b.submit([2], None, "k"),
                                       return_exceptions=True)
        await b.stop()
        return answers
    good, bad, other = run(main())
    assert good == [2] and other == [3] and isinstance(bad, ValueError)


# --- through the app, with the real models -------------------------------------------------------------------

SENTENCES = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Ein Kind sitzt auf einer Bank.",
             "Eine Frau mit einem roten Hut liest ein Buch im Park.", "Drei Männer arbeiten.", "", "Hallo!",
             "Ein kleiner Junge in einem blauen Hemd springt über eine Pfütze auf der Straße."]
REQUESTS = {
    "translate": [{"text": s} for s in SENTENCES] + [{"text": s, "beam": 1} for s in SENTENCES[:4]]
    + [{"texts": SENTENCES[:3], "n_best": 2}],
    "tag": [{"text": t} for t in ("Angela Merkel met Emmanuel Macron in Paris.", "EU rejects German call .",
                                  "Peter Blackburn", "", "The New York Times reported on Google in London.")]
    + [{"texts": ["Paris", "Ban Ki-moon visited Berlin"]}],
    "summarize": [{"text": d} for d in ("The budget meeting is moved to Friday. Please confirm.",
                                        "Attached is the draft contract for the Zanzibar project.",
                                        "The server will be down for maintenance tonight.")],
    "classify": [{"text": t} for t in ("a good film", "a bad film with a dull plot", "", "great")],
}


def same(a, b) -> bool:
    """Equal answers: every string, label and tag the same; scores and probabilities equal to 1e-4 (a padded
    batch multiplies matrices of another shape, which may change the last bits of a float)."""
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, abs=1e-4)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def one_at_a_time(client, path: str, bodies: list) -> list:
    return [client.post(path, json=body).json() for body in bodies]


def all_at_once(client, path: str, bodies: list) -> list:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: client.post(path, json=body).json(), bodies))


@pytest.mark.parametrize("task", sorted(REQUESTS))
def test_batched_answers_equal_one_at_a_time(runners, task):
    served_runners = runners if task == "classify" else pick(runners, task)
    bodies = REQUESTS[task]
    with served({task: served_runners[task]}, max_wait_ms=300) as client:
        alone = one_at_a_time(client, f"/v1/{task}", bodies)
        batched_before = client.get("/v1/stats").json()["models"][task]
        together = all_at_once(client, f"/v1/{task}", bodies)
        stats = client.get("/v1/stats").json()["models"][task]
    assert same(together, alone), (together, alone)
    assert not any("error" in answer for answer in alone)
    calls = stats["batches"] - batched_before["batches"]
    items = stats["items"] - batched_before["items"]
    assert calls < len(bodies) and stats["largest"] > 1, stats       # they did share calls
    assert items == sum(len(b.get("texts", [None])) for b in bodies)


def test_batching_off_gives_the_same_answers(runners):
    pick(runners, "translate")
    bodies = REQUESTS["translate"][:5]
    with served({"translate": runners["translate"]}, max_batch=1) as client:
        together = all_at_once(client, "/v1/translate", bodies)
        assert client.get("/v1/stats").json()["models"]["translate"]["largest"] == 1
    with served({"translate": runners["translate"]}, max_wait_ms=300) as client:
        assert same(all_at_once(client, "/v1/translate", bodies), together)
