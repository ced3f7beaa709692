"""Load test of `cli.py serve` on this machine: N concurrent clients (asyncio; httpx, or with `--client raw` a
minimal HTTP/1.1 client) sending one sentence per request to /v1/translate and /v1/tag for a fixed time, against
the server with request batching and with batching off (`--max-batch 1`). Reports requests/s, p50/p95/p99
latency, errors, the mean batch the server ran, the server's and the load generator's CPU per request, the
server's RSS before and after, its start-up time to ready, and the latency of single requests.

Only 127.0.0.1 is ever contacted: the script starts each server itself on a free local port and stops it. Every
point is bounded in time (--duration, plus the in-flight requests' own timeout).

    python bench/serve_load.py [--duration 60] [--clients 16,64,256] [--endpoints translate,tag]
                               [--modes batched,off] [--models all|translate,tag] [--client httpx|raw]
                               [--json out.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GERMAN = [   # Multi30k-like sentences, 5-16 words
    "Ein Mann mit einem roten Hut sitzt auf einer Bank im Park und liest eine Zeitung.",
    "Zwei Hunde spielen im Schnee.", "Eine Frau in einem blauen Kleid geht die Straße entlang.",
    "Ein kleiner Junge springt in einen Swimmingpool.", "Drei Männer arbeiten auf einer Baustelle.",
    "Ein Mädchen mit langen Haaren spielt Gitarre auf der Bühne.",
    "Eine Gruppe von Menschen steht vor einem Gebäude.",
    "Ein Radfahrer fährt auf einer Straße durch die Berge.", "Ein Kind isst ein Eis am Strand.",
    "Ein älterer Mann sitzt auf einem Stuhl vor seinem Haus und raucht eine Pfeife.",
    "Zwei Frauen unterhalten sich in einem Café.", "Ein schwarzer Hund rennt über eine grüne Wiese.",
    "Ein Mann in einem orangefarbenen Hemd repariert ein Fahrrad.", "Kinder spielen Fußball auf einem Feld.",
    "Eine Frau fotografiert einen Sonnenuntergang am Meer.", "Ein Koch bereitet in einer Küche Essen zu.",
]
ENGLISH = [
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.", "The European Union rejected the German proposal.",
    "Peter Blackburn lives in New York.", "Manchester United beat Chelsea 2-1 at Old Trafford on Sunday.",
    "Shares of Microsoft rose 3 percent in New York.", "The United Nations met in Geneva to discuss the crisis.",
    "Ban Ki-moon visited Berlin last week.", "Police in Sydney arrested two men after the match.",
]
SINGLE = "Ein Mann mit einem roten Hut sitzt auf einer Bank und liest eine Zeitung."   # 12 words
BODIES = {"translate": [{"text": s} for s in GERMAN], "tag": [{"text": s} for s in ENGLISH]}


def start_server(models: str, max_batch: int | None, threads: int | None) -> tuple[subprocess.Popen, str, float]:
    """`cli.py serve` on a free 127.0.0.1 port: (process, base URL, seconds from start to ready)."""
    args = [sys.executable, str(ROOT / "cli.py"), "serve", "--host", "127.0.0.1", "--port", "0"]
    args += ["--models", models] if models != "all" else []
    args += ["--max-batch", str(max_batch)] if max_batch else []
    args += ["--threads", str(threads)] if threads else []
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    seen, deadline = [], started + 120
    while time.perf_counter() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        found = re.search(r"ready in [\d.]+ s: .* on (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return proc, found.group(1), time.perf_counter() - started
    proc.kill()
    raise SystemExit("the server did not start:\n" + "".join(seen[-20:]))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class HttpxClient:
    """One httpx connection (one client each: a single client's connection pool searches all its connections on
    every request, which at 64+ connections costs more than the server)."""

    def __init__(self, url: str, context):
        import httpx
        self.url, self.errors = url, (httpx.HTTPError,)
        self.http = httpx.AsyncClient(verify=context, trust_env=False, timeout=60,
                                      limits=httpx.Limits(max_connections=1))

    async def post(self, path: str, body: dict) -> int:
        return (await self.http.post(self.url + path, json=body)).status_code

    async def aclose(self) -> None:
        await self.http.aclose()


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for this bench's own server only (plain HTTP on
    127.0.0.1, answers with Content-Length): about 0.05 ms of CPU a request against httpx's 0.75 ms, so that
    on a 2-core machine the load generator leaves the server its share of the cores (`--client raw`)."""

    def __init__(self, url: str, context=None):
        host, port = url.removeprefix("http://").split(":")
        self.address, self.stream, self.errors = (host, int(port)), None, (OSError, asyncio.IncompleteReadError)

    async def post(self, path: str, body: dict) -> int:
        if self.stream is None:
            self.stream = await asyncio.open_connection(*self.address)
        reader, writer = self.stream
        data = json.dumps(body).encode()
        writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d"
                     b"\r\n\r\n%s" % (path.encode(), self.address[0].encode(), len(data), data))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        size = int(re.search(r"content-length: *(\d+)", head).group(1))
        await reader.readexactly(size)
        return int(head.split(" ", 2)[1])

    async def aclose(self) -> None:
        if self.stream is not None:
            self.stream[1].close()


CLIENTS = {"httpx": HttpxClient, "raw": RawClient}


async def load(url: str, path: str, bodies: list[dict], clients: int, duration: float, max_requests: int,
               client: str = "httpx") -> dict:
    """`clients` loops, each with its own connection, sending its next body as soon as the last answer came, until
    `duration` passes or `max_requests` were sent. Also the load generator's own CPU time per request."""
    import resource
    import ssl
    latencies: list[float] = []
    errors, sent = 0, 0
    context = ssl.create_default_context()       # made once: each client would otherwise read the CA bundle
    conns = [CLIENTS[client](url, context) for _ in range(clients)]

    async def client_loop(k: int, conn) -> None:
        nonlocal errors, sent
        i = k
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            start = time.perf_counter()
            try:
                ok = await conn.post(path, bodies[i % len(bodies)]) == 200
            except conn.errors:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1
            i += clients
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    try:
        deadline = time.perf_counter() + duration
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(k, conn) for k, conn in enumerate(conns)))
        elapsed = time.perf_counter() - began
    finally:
        await asyncio.gather(*(conn.aclose() for conn in conns))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"requests": len(latencies), "errors": errors, "seconds": round(elapsed, 2),
            "rps": len(latencies) / elapsed, "p50_ms": 1000 * percentile(latencies, 50),
            "p95_ms": 1000 * percentile(latencies, 95), "p99_ms": 1000 * percentile(latencies, 99),
            "client_cpu_ms": 1000 * (usage.ru_utime + usage.ru_stime - cpu) / max(1, sent)}


def single_latency(url: str, repeats: int = 20) -> dict:
    """Sequential requests, one at a time: beam 5, a 12-word sentence (three warm-ups first)."""
    import httpx
    times = []
    with httpx.Client(timeout=60) as http:
        for i in range(repeats + 3):
            start = time.perf_counter()
            http.post(url + "/v1/translate", json={"text": SINGLE, "beam": 5}).raise_for_status()
            if i >= 3:
                times.append(time.perf_counter() - start)
    return {"p50_ms": 1000 * percentile(times, 50), "min_ms": 1000 * min(times)}


def stats(url: str, task: str) -> dict:
    import httpx
    return httpx.get(url + "/v1/stats").json()["models"][task]


def run_mode(mode: str, args) -> dict:
    """One server (batched, or batching off): start-up, RSS, single latency, then every (endpoint, clients) point."""
    proc, url, ready_s = start_server(args.models, 1 if mode == "off" else None, args.threads)
    try:
        result = {"mode": mode, "ready_s": ready_s, "rss_before_mb": rss_mb(proc.pid), "points": []}
        if "translate" in args.endpoints:
            result["single"] = single_latency(url)
        for endpoint in args.endpoints:
            for clients in args.clients:
                before, cpu = stats(url, endpoint), cpu_seconds(proc.pid)
                point = asyncio.run(load(url, f"/v1/{endpoint}", BODIES[endpoint], clients, args.duration,
                                         args.max_requests, args.client))
                after, cpu = stats(url, endpoint), cpu_seconds(proc.pid) - cpu
                batches = after["batches"] - before["batches"]
                point.update(endpoint=endpoint, clients=clients, server_cpu_ms=1000 * cpu / max(1, point["requests"]),
                             rss_mb=rss_mb(proc.pid),
                             mean_batch=(after["items"] - before["items"]) / batches if batches else 0.0)
                result["points"].append(point)
                print(f"  {mode:8} {endpoint:9} {clients:4} clients: {point['rps']:8.1f} req/s  p50 "
                      f"{point['p50_ms']:7.0f} ms  p99 {point['p99_ms']:7.0f} ms  errors {point['errors']}  "
                      f"batch {point['mean_batch']:.1f}  server CPU {point['server_cpu_ms']:.1f} ms/request  "
                      f"client CPU {point['client_cpu_ms']:.2f} ms/request  "
                      f"RSS {point['rss_mb']:.0f} MB",
                      file=sys.stderr)
        result["rss_after_mb"] = rss_mb(proc.pid)
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def table(results: list[dict]) -> str:
    rows = [("| endpoint | clients | serving | requests/s | p50 ms | p95 ms | p99 ms | errors | mean batch | "
             "server CPU ms/request |"), "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    points = [(r["mode"], p) for r in results for p in r["points"]]
    for mode, p in sorted(points, key=lambda mp: (mp[1]["endpoint"], mp[1]["clients"], mp[0])):
        rows.append(f"| {p['endpoint']} | {p['clients']} | {'batching off' if mode == 'off' else 'batched'} | "
                    f"{p['rps']:,.1f} | {p['p50_ms']:,.0f} | {p['p95_ms']:,.0f} | {p['p99_ms']:,.0f} | "
                    f"{p['errors']} | {p['mean_batch']:.1f} | {p['server_cpu_ms']:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds per point (the issue's 60).")
    parser.add_argument("--clients", default="16,64,256", help="Concurrent clients, comma-separated.")
    parser.add_argument("--endpoints", default="translate,tag")
    parser.add_argument("--modes", default="batched,off", help="batched and/or off (--max-batch 1).")
    parser.add_argument("--models", default="all", help="What the server loads: all (every shipped model, for "
                        "the RSS figure) or a --models list.")
    parser.add_argument("--threads", type=int, default=None, help="The server's torch threads.")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="httpx", help="The load generator: httpx "
                        "(about 0.75 ms of CPU a request, on the server's machine) or raw (a minimal HTTP/1.1 "
                        "client, about 0.05 ms).")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="Cap on requests per point.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    if max(args.clients) > 1024 or args.duration > 600:
        raise SystemExit("at most 1,024 clients and 600 s a point")
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    unknown = set(args.endpoints) - set(BODIES)
    if unknown:
        raise SystemExit(f"unknown endpoint(s): {', '.join(sorted(unknown))} (known: {', '.join(BODIES)})")
    from bench.common import machine
    print(f"machine: {machine()}", file=sys.stderr)
    results = [run_mode(mode, args) for mode in args.modes.split(",")]
    print(table(results))
    for r in results:
        single = r.get("single")
        print(f"\n{r['mode']}: start-up to ready {r['ready_s']:.2f} s; RSS {r['rss_before_mb']:.0f} MB before, "
              f"{r['rss_after_mb']:.0f} MB after" + (f"; single request (beam 5, 12 words) p50 "
                                                     f"{single['p50_ms']:.0f} ms, best {single['min_ms']:.0f} ms"
                                                     if single else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
