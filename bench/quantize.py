"""Float vs int8 vs ONNX Runtime for every shipped task: size on disk, throughput, one-request latency, cold start,
peak memory and quality, side by side in one sitting.

For each model the bench writes its int8 release (`cli.py export M OUT --quantize int8`) and its ONNX export
(`cli.py export M OUT.onnx --format onnx`) into --work (a temporary folder by default), then runs the three
variants alternately (float, int8, onnx, float, int8, onnx, ...) for --rounds rounds, each measurement in a fresh
process so that peak RSS and cold start are the variant's own. Per run:

    throughput    over the task's dev/test split as the speed benches measure it: translate sentences/s (beam 5,
                  Multi30k test_2016_flickr), tag sentences/s (CoNLL-2003 dev), classify sentences/s (SST-2 train),
                  charlm characters/s (32 streams sampled at temperature 0.8, as bench/generate_speed.py), forecast
                  windows/s (every ETTh1 test window, batched), summarize documents/s (AESLC dev, beam 4);
                  translate, tag and classify: the second of two passes (`passes`; the first in the JSON)
    latency       one input alone (a sentence, a text, a 100-character sample, a window, a document): the median
                  over several different inputs, model loaded
    cold start    `cli.py <command> -m VARIANT <one input>` in a fresh process (bench/common.cold_start_seconds)
    peak RSS      of the measuring process (model, data, metric) at its end
    quality       what `cli.py evaluate <task>` reports, through the same library functions: BLEU (beam 5),
                  entity F1, accuracy, nats/char on the last 10% of tinyshakespeare, MSE on ETTh1 test,
                  ROUGE-1/2/L on AESLC dev

Ratios int8/float and onnx/float are taken round by round (the runs next to each other) and then medianed: on a
noisy shared machine only a ratio measured side by side holds. Every process runs with the same thread count
(--threads, default 1: NMT_THREADS for the commands, torch's and ONNX Runtime's intra-op threads), so the runtimes
compare kernel for kernel. The ONNX variant is skipped with a note where onnxruntime is not installed, the task
has no ONNX export (summarize) or the export fails.

    python bench/quantize.py [--tasks translate,tag,classify,charlm,forecast,summarize] [--rounds 3]
                             [--work DIR] [--threads 1] [--json | --markdown]
    python bench/quantize.py --quick --tasks translate,tag      # a small slice of each split, one round
    python bench/quantize.py --tasks translate --models everyday-de-en      # one of a task's models
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CKPT = ROOT / "checkpoints"

VARIANTS = ("float", "int8", "onnx")
# the models of each task, the command that runs one and its one input (cold start)
MODELS = {"translate": ["multi30k-de-en", "everyday-de-en"], "tag": ["conll2003-ner-fast", "conll2003-ner"],
          "classify": ["sst2-sentiment"], "charlm": ["shakespeare-charlm-fast"], "forecast": ["etth1-h96"],
          "summarize": ["aeslc-summarizer"]}
COMMAND = {"translate": ["translate", "Ein Mann fährt Fahrrad."],
           "tag": ["tag", "Angela Merkel met Emmanuel Macron in Paris."],
           "classify": ["classify", "a gripping , beautifully acted film"],
           "charlm": ["generate", "--length", "100", "--seed", "1"],
           "forecast": ["forecast", "--corpus", "etth1", "--json"],
           "summarize": ["summarize", "Please send me the signed contract by Friday so that we can close the deal "
                                      "before the end of the quarter."]}
UNIT = {"translate": "sent/s", "tag": "sent/s", "classify": "sent/s", "charlm": "chars/s", "forecast": "windows/s",
        "summarize": "docs/s"}
QUICK = 40                     # inputs of each split in a --quick run (characters: 100x)
LATENCY_INPUTS = 10            # inputs timed one at a time (--quick: 3)


# --- one measuring process ------------------------------------------------------------------------------------

def timed(fn):
    """fn()'s result and its wall time in seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def passes(fn, inputs: int) -> tuple:
    """fn()'s result, and inputs/s of its second run and of its first. The second is the throughput reported: the
    first also pays once for the heap's growth and for oneDNN's kernels for the split's shapes (a server pays
    that once; `first_pass` in the JSON keeps it)."""
    _, first = timed(fn)
    result, second = timed(fn)
    return result, inputs / second, inputs / first


def latency_ms(fn, inputs: list) -> float:
    """Median milliseconds of fn(x) over the inputs, one at a time, after one untimed call."""
    fn(inputs[0])
    return 1000 * statistics.median(timed(lambda: fn(x))[1] for x in inputs)


def load(task: str, path: str, runtime: str, threads: int):
    """The task's Runner of a checkpoint (torch, int8 kernels where it holds int8 matrices) or of an ONNX export
    folder, as the commands load them."""
    from nmt import tasks
    from nmt import threads as nmt_threads
    nmt_threads.use("batch", threads)
    if runtime == "onnx":
        from nmt.onnx.runtime import load as load_onnx
        return load_onnx(path, task, threads)
    return tasks.module(task).RUNNER.load(path)


def translate(runner, n: int | None, k: int) -> dict:
    """Beam-5 sentences/s and BLEU on Multi30k test_2016_flickr (the same hypotheses), and one sentence's
    latency."""
    from nmt import metrics
    from nmt.config import DecodeConfig
    from nmt.corpora import corpus_pairs
    pairs = corpus_pairs("multi30k", "test_2016_flickr")[:n]
    decode = DecodeConfig(beam=5)
    latency = latency_ms(lambda s: runner.translate([s], decode), [s for s, _ in pairs[:k]])
    hyps, rate, first = passes(lambda: runner.translate([s for s, _ in pairs], decode), len(pairs))
    return {"inputs": len(pairs), "throughput": rate, "first_pass": first, "latency_ms": latency,
            "quality": {"bleu": metrics.bleu(hyps, [r for _, r in pairs]).score}}


def tag(runner, n: int | None, k: int) -> dict:
    """Sentences/s and entity F1 (seqeval strict IOB2) on CoNLL-2003 dev, and one sentence's latency."""
    from nmt.corpora import corpus_files
    from nmt.metrics import entity_scores
    from nmt.tasks.tag import read_tagged
    gold = read_tagged(corpus_files("conll2003", "dev")["paths"][0])[:n]
    runner.tag([["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Paris", "."]] * 32)   # warm-up, unseen words
    latency = latency_ms(lambda s: runner.tag([s]), [w for w, _ in gold[:k]])
    predicted, rate, first = passes(lambda: runner.tag([w for w, _ in gold]), len(gold))
    return {"inputs": len(gold), "throughput": rate, "first_pass": first, "latency_ms": latency,
            "quality": {"f1": entity_scores([t for _, t in gold], predicted)["f1"]}}


def classify(runner, n: int | None, k: int) -> dict:
    """Sentences/s over SST-2's 6,920 training sentences (as bench/classify_speed.py: dev's 872 are two batches,
    a pass too short to time on this machine), accuracy on SST-2 dev (`evaluate classify`'s own scoring), and one
    text's latency."""
    from nmt.tasks.classify import corpus_pairs
    pairs = corpus_pairs("sst2", "dev", runner.setup.data)[:n]
    texts = [t for _, t in corpus_pairs("sst2", "train", runner.setup.data)][:None if n is None else 4 * n]
    runner.predict(["a gripping , beautifully acted film"] * 32)                      # warm-up
    latency = latency_ms(lambda t: runner.predict([t]), [t for _, t in pairs[:k]])
    _, rate, first = passes(lambda: runner.predict(texts), len(texts))
    return {"inputs": len(texts), "throughput": rate, "first_pass": first, "latency_ms": latency,
            "quality": {"accuracy": runner.evaluate(pairs)["accuracy"]}}


def charlm(runner, n: int | None, k: int) -> dict:
    """Characters/s of 32 streams sampled together, one 100-character sample's latency, and nats/char on the last
    10% of tinyshakespeare as `evaluate charlm` computes it (the hidden state carried through the text)."""
    from nmt import corpora, data
    from nmt.config import SampleConfig
    from nmt.tasks.charlm import split_text
    text = split_text(data.read_text(corpora.corpus_files("tinyshakespeare", "val")["paths"][0]),
                      runner.setup.data.train_share)[1][:None if n is None else 100 * n]
    length = 250 if n is None else 25
    def one(seed: int) -> list:
        return list(runner.sample(SampleConfig(prime="ROMEO:", length=100, temperature=0.8), seed))
    latency = latency_ms(one, list(range(k)))
    batch = SampleConfig(prime="\n", length=length, temperature=0.8, num_samples=32)
    list(runner.sample(SampleConfig(prime="\n", length=10, temperature=0.8, num_samples=32), 0))       # warm-up
    _, seconds = timed(lambda: list(runner.sample(batch, 1)))
    scores, score_seconds = timed(lambda: runner.evaluate(text))
    return {"inputs": len(text), "throughput": 32 * length / seconds, "latency_ms": latency,
            "scoring_chars_per_s": len(text) / score_seconds, "quality": {"nats_per_char": scores["loss"]}}


def forecast(runner, n: int | None, k: int) -> dict:
    """Windows/s over every ETTh1 test window (batched), one window's latency, and the test MSE as `evaluate
    forecast` computes it (z-scored with the training rows)."""
    import torch
    from nmt.corpora import corpus_files
    from nmt.timeseries import Scaler, score, split_ends, split_series
    files = corpus_files("etth1")
    series = runner.read(files["paths"][0])
    parts = split_series(series, split_ends(len(series), files["split_rows"]), runner.lookback, runner.horizon)
    test = parts["test"].values
    windows = [test[i:i + runner.lookback] for i in range(0, 37 * k, 37)]
    latency = latency_ms(runner.forecast, windows)
    scaled = Scaler.fit(parts["train"].values).apply(test)
    with torch.inference_mode():
        (_, count), seconds = timed(lambda: score(runner.model.eval(), scaled, runner.lookback, runner.horizon,
                                                  runner.setup.data.eval_batch_size))
    mse = runner.evaluate(parts, "test")["model"]["mse"]
    return {"inputs": count, "throughput": count / seconds, "latency_ms": latency, "quality": {"mse": mse}}


def summarize(runner, n: int | None, k: int) -> dict:
    """Documents/s and ROUGE-1/2/L on AESLC dev (beam 4, `evaluate summarize`'s own scoring), and one document's
    latency."""
    from nmt.config import SummaryDecodeConfig
    from nmt.tasks.summarize import evaluate, evaluation_pairs
    pairs, extra = evaluation_pairs("aeslc", "dev")
    pairs, decode = pairs[:n], SummaryDecodeConfig()
    latency = latency_ms(lambda d: runner.summarize([d], decode), [d for d, _ in pairs[:k]])
    rows, seconds = timed(lambda: evaluate(runner, pairs, decode, (), extra))
    return {"inputs": len(pairs), "throughput": len(pairs) / seconds, "latency_ms": latency,
            "quality": {f"rouge{m}": rows["model"][m] for m in ("1", "2", "L")}}


MEASURE = {"translate": translate, "tag": tag, "classify": classify, "charlm": charlm, "forecast": forecast,
           "summarize": summarize}


def measure(task: str, path: str, runtime: str, threads: int, quick: bool) -> dict:
    """One variant measured in this process: the task's numbers, the load time and the peak RSS at the end."""
    from bench.common import peak_rss_mb
    runner, load_s = timed(lambda: load(task, path, runtime, threads))
    result = MEASURE[task](runner, QUICK if quick else None, 3 if quick else LATENCY_INPUTS)
    return result | {"load_s": load_s, "peak_rss_mb": peak_rss_mb()}


# --- the sitting ----------------------------------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    """`python cli.py ARGS...`, output captured."""
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True)


def variants(task: str, model: Path, work: Path) -> dict[str, Path | str]:
    """The float checkpoint, its int8 release and its ONNX export (written into `work`); a variant that cannot be
    made is a one-line note instead of a path."""
    from nmt.onnx import GRAPHS, missing
    made: dict[str, Path | str] = {"float": model}
    for name, out, extra in (("int8", work / f"{model.stem}-int8.pt", ["--quantize", "int8"]),
                             ("onnx", work / f"{model.stem}.onnx", ["--format", "onnx"])):
        if name == "onnx" and (missing("onnxruntime") or task not in GRAPHS):
            made[name] = "onnxruntime is not installed" if missing("onnxruntime") else f"no ONNX export for {task}"
            continue
        if not out.exists():
            done = cli("export", str(model), str(out), *extra)
            if done.returncode:
                made[name] = f"export failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:160]}"
                continue
        made[name] = out
    return made


def size_mb(path: Path) -> float:
    """Megabytes on disk of a checkpoint file or an export folder."""
    files = path.rglob("*") if path.is_dir() else [path]
    return sum(f.stat().st_size for f in files if f.is_file()) / 1e6


def fresh(task: str, path: Path, variant: str, threads: int, quick: bool) -> dict:
    """`measure` in a fresh process, then the cold start of the variant's command for one input."""
    from bench.common import cold_start_seconds
    args = [sys.executable, __file__, "--child", task, str(path), "onnx" if variant == "onnx" else "torch",
            "--threads", str(threads)] + (["--quick"] if quick else [])
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    run = json.loads(done.stdout.strip().splitlines()[-1])
    command, *one = COMMAND[task]
    runtime = ["--runtime", "onnx"] if variant == "onnx" else []
    try:
        run["cold_start_s"] = cold_start_seconds([command, "-m", str(path), *runtime, *one], repeats=1)
    except subprocess.CalledProcessError as exc:
        run["cold_start_error"] = (exc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1][:200]
    return run


NUMBERS = ("throughput", "latency_ms", "cold_start_s", "peak_rss_mb")


def bench_model(task: str, model: Path, work: Path, rounds: int, threads: int, quick: bool) -> dict:
    """The three variants of one model alternately for `rounds` rounds: each run, the medians, the per-round
    ratios to float medianed, and the quality (the same every round: the first run's)."""
    made = variants(task, model, work)
    ready = [v for v in VARIANTS if isinstance(made[v], Path)]
    runs: dict[str, list[dict]] = {v: [] for v in ready}
    for r in range(rounds):
        for v in ready:
            runs[v].append(fresh(task, made[v], v, threads, quick))
            print(json.dumps({"task": task, "model": model.stem, "variant": v, "round": r + 1} | runs[v][-1]),
                  file=sys.stderr, flush=True)
    result = {"unit": UNIT[task], "variants": {}}
    for v in VARIANTS:
        result["variants"][v] = summary(made[v], runs.get(v, []))
    for v in ("int8", "onnx"):
        if v in runs and "float" in runs:
            result[f"{v}/float"] = ratios(runs["float"], runs[v], size_mb(made[v]) / size_mb(model))
    return result


def summary(path: Path | str, runs: list[dict]) -> dict:
    """A variant's path, size, runs and the median of each number over its runs (or its skip note)."""
    if not isinstance(path, Path):
        return {"skipped": path}
    ok = [r for r in runs if "error" not in r]
    medians = {k: statistics.median(r[k] for r in ok if k in r) for k in NUMBERS if any(k in r for r in ok)}
    quality = ok[0]["quality"] if ok else {}
    return {"path": str(path), "size_mb": size_mb(path), "median": medians, "quality": quality, "runs": runs}


def ratios(base: list[dict], other: list[dict], size: float) -> dict:
    """Per-round ratios other/base of each number, medianed; the size ratio; the quality difference other - base."""
    pairs = [(a, b) for a, b in zip(base, other) if "error" not in a and "error" not in b]
    out = {"size": size}
    for k in NUMBERS:
        values = [b[k] / a[k] for a, b in pairs if k in a and k in b and a[k]]
        if values:
            out[k] = statistics.median(values)
    if pairs:
        out["quality_diff"] = {m: pairs[0][1]["quality"][m] - v for m, v in pairs[0][0]["quality"].items()}
    return out


# --- the table ------------------------------------------------------------------------------------------------

HEADER = ("task", "model", "variant", "size MB", "throughput", "latency ms", "cold start s", "RSS MB", "quality")


def table_rows(result: dict) -> list[tuple[str, ...]]:
    """One row per variant; int8 and onnx cells carry their median ratio to float (quality: the difference)."""
    rows = []
    for task, models in result["tasks"].items():
        for model, r in models.items():
            if "skipped" in r:
                rows.append((task, model, "-", "", "", "", "", "", r["skipped"]))
                continue
            for v, s in r["variants"].items():
                rows.append((task, model, v, *cells(s, r.get(f"{v}/float"), r["unit"])))
    return rows


def cells(s: dict, ratio: dict | None, unit: str) -> tuple[str, ...]:
    """A variant's cells: value, and (x ratio) beside it where there is one."""
    if "skipped" in s:
        return ("", "", "", "", "", f"skipped: {s['skipped']}")
    if not s["median"]:
        return ("", "", "", "", "", f"failed: {s['runs'][0].get('error', '?')}")
    ratio = ratio or {}
    size = f"{s['size_mb']:.1f}" + (f" (x{ratio['size']:.2f})" if "size" in ratio else "")
    numbers = []
    for key, fmt in (("throughput", "{:.0f} " + unit), ("latency_ms", "{:.1f}"), ("cold_start_s", "{:.2f}"),
                     ("peak_rss_mb", "{:.0f}")):
        value = s["median"].get(key)
        text = fmt.format(value) if value is not None else "?"
        numbers.append(text + (f" (x{ratio[key]:.2f})" if key in ratio else ""))
    diff = ratio.get("quality_diff", {})
    quality = ", ".join(f"{m} {v:.4g}" + (f" ({diff[m]:+.3g})" if m in diff else "") for m, v in s["quality"].items())
    return (size, *numbers, quality)


def render(rows: list[tuple[str, ...]], markdown: bool) -> str:
    """The rows as a Markdown table, or as aligned plain text."""
    if markdown:
        lines = [HEADER, tuple("---" for _ in HEADER), *rows]
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (HEADER, *rows))


# --- the command line -----------------------------------------------------------------------------------------

def sitting(names: list[str], work: Path, rounds: int, threads: int, quick: bool, only: set[str] | None = None) -> dict:
    """Every model of the named tasks (or those in `only`; absent checkpoints noted), variants alternated model by
    model."""
    from bench.common import machine
    import torch
    torch.set_num_threads(threads)
    result = {"machine": machine(), "rounds": rounds, "threads": threads, "quick": quick, "tasks": {}}
    for task in names:
        result["tasks"][task] = {}
        for name in (n for n in MODELS[task] if only is None or n in only):
            path = CKPT / f"{name}.pt"
            if not path.exists():
                result["tasks"][task][name] = {"skipped": f"{path.relative_to(ROOT)} is not here"}
                continue
            result["tasks"][task][name] = bench_model(task, path, work, rounds, threads, quick)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(MODELS), help="Comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--models", default=None, help="Comma-separated: only these of the tasks' models "
                        "(e.g. everyday-de-en).")
    parser.add_argument("--rounds", type=int, default=3, help="Alternations float, int8, onnx (--quick: 1).")
    parser.add_argument("--quick", action="store_true", help=f"The first {QUICK} inputs of each split, one round: "
                        "checks that it runs, measures nothing.")
    parser.add_argument("--work", type=Path, default=None, help="Folder for the int8 and ONNX exports (kept; "
                        "default: a temporary folder, removed).")
    parser.add_argument("--threads", type=int, default=1, help="Threads of every process (torch, ONNX Runtime, "
                        "NMT_THREADS for the commands).")
    parser.add_argument("--json", action="store_true", help="Print the whole result as JSON.")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown (for the README).")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "PATH", "RUNTIME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:                                     # internal: one variant measured in this fresh process
        print(json.dumps(measure(*args.child, args.threads, args.quick)))
        return
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in names if t not in MODELS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)} (known: {', '.join(MODELS)})")
    os.environ["NMT_THREADS"] = str(args.threads)      # the commands timed for cold start use the same count
    with tempfile.TemporaryDirectory(prefix="nmt-quantize-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        only = {m.strip() for m in args.models.split(",")} if args.models else None
        result = sitting(names, work, 1 if args.quick else args.rounds, args.threads, args.quick, only)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    if args.quick:
        print("QUICK SMOKE RUN: slices of each split, one round; these numbers are not measurements")
    print(render(table_rows(result), args.markdown))
    print(f"\n{result['machine']}; {result['rounds']} round(s) alternated, {result['threads']} thread(s); "
          "(xR): median per-round ratio to float; quality (+d): difference from float")


if __name__ == "__main__":
    main()
