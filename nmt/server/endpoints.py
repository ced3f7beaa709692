"""The JSON endpoints, one per task: a registry that a task joins with one small function.

    @endpoint("classify", ClassifyBody, "label", "labels")
    def classify(runner, texts, options):
        '''Labels with their probabilities.'''
        return runner.classify(texts, options["top"], options["attention"])

The function gets the task's runner (nmt.tasks), a list of inputs and the request's options, and returns one
result (a dict holding `result`) per input. It is called with the inputs of many requests at once, all with equal
options, so it must treat its inputs independently (the runners do: batching never changes an answer). `prepare`
turns the options into what the function takes (a decode config, say) when the request arrives, so that a bad
value is a 422 before anything queues. The app (app.py) does the rest: the route, limits, batching, errors.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nmt.config import DecodeConfig, SampleConfig, SummaryDecodeConfig, make
from nmt.server.errors import ApiError
from nmt.server.schemas import Body, ClassifyBody, ForecastBody, NamesBody, SummarizeBody, TagBody, TranslateBody


@dataclass(frozen=True)
class Endpoint:
    task: str                               # the task's name in nmt.tasks.TASKS
    body: type[Body]                        # the request: inputs and options
    run: Callable[[Any, list, Any], list]   # run(runner, inputs, prepared options) -> one result dict each
    result: str                             # the key of each result's main value ("translation")
    results: str | None                     # a list request's answer also holds the main values under this key
    prepare: Callable[[dict], Any]          # options as given -> what `run` takes (ConfigError: a 422)
    path: str                               # the URL
    check: Callable[[Any, list, dict], None] | None = None   # check(runner, inputs, options) first (ApiError)
    example: Any = None                     # an input, for warming the model up and for the page

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or self.task).strip().splitlines()[0]


ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(task: str, body: type[Body], result: str, results: str | None = None,
             prepare: Callable[[dict], Any] = dict, path: str | None = None,
             check: Callable[[Any, list, dict], None] | None = None, example: Any = None) -> Callable:
    """Register `fn(runner, inputs, options) -> results` as task `task`'s endpoint (POST /v1/TASK by default)."""
    def register(fn: Callable) -> Callable:
        ENDPOINTS[task] = Endpoint(task, body, fn, result, results, prepare, path or f"/v1/{task}", check, example)
        return fn
    return register


def config_of(cls: type, extra: tuple[str, ...] = ()) -> Callable[[dict], tuple]:
    """prepare: (the config `cls` built from the options it knows, {the `extra` options})."""
    def prepare(options: dict) -> tuple:
        return make(cls, **{k: v for k, v in options.items() if k not in extra}), {k: options[k] for k in extra}
    return prepare


@endpoint("translate", TranslateBody, "translation", "translations",
          config_of(DecodeConfig, ("attention", "confidence")),
          example="Ein Mann mit einem roten Hut sitzt auf einer Bank im Park.")
def translate(runner, texts: list[str], options: tuple) -> list[dict]:
    """Translate sentences (beam 5 by default): the best translation, its score, n-best lists, attention and the
    confidence (mean log-probability per token; below -1.0 the input is likely unlike the model's image captions)."""
    decode, extra = options
    out = []
    results = runner.translate_hyps(texts, decode, keep_attention=extra["attention"])
    confidence = runner.confidence(texts, [hyps[0].tokens if hyps else [] for hyps in results], decode) \
        if extra["confidence"] else [None] * len(texts)
    for line, hyps, sure in zip(texts, results, confidence):
        result = {"translation": runner.tgt_tok.decode(hyps[0].tokens) if hyps else "",
                  "score": hyps[0].score if hyps else 0.0,
                  "truncated": len(runner.src_tok.encode(line)) > decode.max_src_tokens}
        if extra["confidence"]:
            result["confidence"] = sure
        if decode.n_best > 1:
            result["n_best"] = [{"translation": runner.tgt_tok.decode(h.tokens), "score": h.score} for h in hyps]
        if extra["attention"]:
            view = runner.attention_view(line, hyps[0], decode) if hyps else None
            result["attention"] = view and {k: view[k] for k in ("weights", "source", "target")}
        out.append(result)
    return out


@endpoint("tag", TagBody, "entities", example="Angela Merkel met Emmanuel Macron in Paris on Tuesday.")
def tag(runner, texts: list[str], options: dict) -> list[dict]:
    """Find named entities: each with its type and character offsets, and the words with their tags."""
    return [{k: r[k] for k in ("entities", "words", "tags")} for r in runner.tag_text(texts)]


@endpoint("summarize", SummarizeBody, "summary", "summaries", config_of(SummaryDecodeConfig),
          example="Hi team, the quarterly budget meeting has moved to Friday at 3 pm in the main conference room. "
                  "Please bring the updated gas trading figures and confirm that you can attend.")
def summarize(runner, documents: list[str], options: tuple) -> list[dict]:
    """Write a short summary (a subject line) of each document (beam 4 by default)."""
    return [{"summary": s} for s in runner.summarize(documents, options[0])]


def _pooling(runner, texts: list, options: dict) -> None:
    if options["attention"] and runner.setup.model.pooling != "attention":
        raise ApiError(422, "invalid_option", f"attention needs a model with attention pooling; this one pools by "
                       f"{runner.setup.model.pooling}", field="attention")


@endpoint("classify", ClassifyBody, "label", "labels", check=_pooling,
          example="a gripping, beautifully acted film")
def classify(runner, texts: list[str], options: dict) -> list[dict]:
    """Label texts: the label, its probability and every label's (with `attention`, each step's weight)."""
    keep = ("label", "probability", "probabilities") + (("steps", "attention") if options["attention"] else ())
    records = runner.classify(texts, options["top"], options["attention"])
    return [{k: r[k] for k in keep} for r in records]


def _forecast_shapes(runner, histories: list, options: dict) -> None:
    """Each history's rows hold one value per channel of the model (a 422 naming the history otherwise)."""
    width = len(runner.columns)
    for i, rows in enumerate(histories):
        if len(rows) < runner.lookback:
            raise ApiError(422, "invalid_input", f"history {i} has {len(rows)} rows; the model reads the last "
                           f"{runner.lookback}", field="history")
        bad = next((r for r, row in enumerate(rows) if len(row) != width), None)
        if bad is not None:
            raise ApiError(422, "invalid_input", f"row {bad} of history {i} has {len(rows[bad])} values; the model "
                           f"reads {width} channels ({', '.join(runner.columns)})", field="history")


@endpoint("forecast", ForecastBody, "forecast", "forecasts", check=_forecast_shapes)
def forecast(runner, histories: list, options: dict) -> list[dict]:
    """Forecast the `horizon` rows after each history (its last `lookback` rows are read), in its own units."""
    return [{"forecast": runner.forecast(np.asarray(rows, dtype=np.float64)).tolist(), "columns": runner.columns,
             "lookback": runner.lookback, "horizon": runner.horizon} for rows in histories]


def _conditions(runner, conditions: list, options: dict) -> None:
    from nmt.config import ConfigError
    for c in conditions:
        try:
            runner.condition(c or None)
        except ConfigError as exc:
            raise ApiError(422, "invalid_input", str(exc), field="condition") from None


@endpoint("namegen", NamesBody, "names", prepare=config_of(SampleConfig, ("seed",)), check=_conditions)
def namegen(runner, conditions: list, options: tuple) -> list[dict]:
    """Sample names for a condition (a language), each up to its end symbol, and whether each is a training name."""
    sample, extra = options
    out = []
    for c in conditions:
        names = runner.sample(c or None, sample, extra["seed"])
        out.append({"names": names, "in_training": runner.model.is_known(names),
                    "condition": runner.conditions[runner.condition(c or None)]})
    return out
