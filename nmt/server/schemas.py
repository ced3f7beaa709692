"""The request bodies: one input or a list of them, and each task's options, named as on the command line.

An option left out (or null) takes the value the command line would: its default lives in nmt/config (the only
place defaults live) and is read from there for the docs. Types are checked here (422 naming the field); ranges
are checked by `nmt.config.make` when the task's config is built, so they too have one home.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from nmt.config import DecodeConfig, SampleConfig, SummaryDecodeConfig


def default(cls: type, name: str) -> Any:
    """The default of a config field (for the docs; the config stays the one place it is set)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def option(cls: type, name: str, text: str, **kw) -> Any:
    """An optional field documented with the default of config `cls`'s field `name`."""
    return Field(None, description=f"{text} Default {default(cls, name)!r}.", **kw)


class Body(BaseModel):
    """A request: the inputs (`ITEM`: one, `ITEMS`: a list) and options. Unknown fields are refused."""
    model_config = ConfigDict(extra="forbid")
    ITEM: ClassVar[str] = "text"
    ITEMS: ClassVar[str] = "texts"

    def inputs(self) -> tuple[list | None, bool]:
        """(the inputs as a list, whether one was given alone); None when neither or both fields are given."""
        one, many = getattr(self, self.ITEM), getattr(self, self.ITEMS)
        if (one is None) == (many is None):
            return None, False
        return ([one], True) if one is not None else (list(many), False)

    def options(self) -> dict:
        """The options as given (None: not given), without the inputs."""
        return self.model_dump(exclude={self.ITEM, self.ITEMS})


class Texts(Body):
    text: str | None = Field(None, description="One input; the answer is one result.")
    texts: list[str] | None = Field(None, description="Several inputs; the answer holds one result each, "
                                       "in order.")


class TranslateBody(Texts):
    beam: int | None = option(DecodeConfig, "beam", "Beam size (1 = greedy).")
    n_best: int | None = option(DecodeConfig, "n_best", "Hypotheses returned per input (at most the beam).")
    length_penalty: float | None = option(DecodeConfig, "length_penalty", "GNMT alpha; 0 disables.")
    max_len_ratio: float | None = option(DecodeConfig, "max_len_ratio", "Output cap: ratio * source length "
                                            "+ 10.")
    attention: bool = Field(False, description="Add the attention weights (target x source pieces).")
    confidence: bool = Field(False, description="Add the confidence: the mean log-probability per output token "
                             "(below -1.0: the input is likely unlike the image captions the model knows). Costs "
                             "one more pass of the model, about a third of the beam search's time.")


class GenerateBody(Body):
    prime: str | None = option(SampleConfig, "prime", "Text the sample continues.")
    length: int | None = option(SampleConfig, "length", "Characters to generate.")
    temperature: float | None = option(SampleConfig, "temperature", "0 = greedy; higher = more random.")
    top_k: int | None = option(SampleConfig, "top_k", "Sample among the K most likely (0: all).")
    top_p: float | None = option(SampleConfig, "top_p", "Nucleus sampling mass in (0, 1].")
    num_samples: int | None = option(SampleConfig, "num_samples", "Independent samples.")
    seed: int | None = Field(None, description="Same seed, same text (default: a random seed, returned).")
    stream: bool = Field(False, description="Answer with server-sent events, a few characters each.")


class NamesBody(Body):
    ITEM: ClassVar[str] = "condition"
    ITEMS: ClassVar[str] = "conditions"
    condition: str | None = Field(None, description="The language to sample names of (an unconditional model "
                                  "needs none).")
    conditions: list[str] | None = Field(None, description="Several conditions; names for each.")
    num_samples: int | None = option(SampleConfig, "num_samples", "Names per condition.")
    prime: str | None = option(SampleConfig, "prime", "The start of every name.")
    length: int | None = Field(None, description="Most characters in a name. Default 500.")
    temperature: float | None = option(SampleConfig, "temperature", "0 = greedy; higher = more random.")
    top_k: int | None = option(SampleConfig, "top_k", "Sample among the K most likely (0: all).")
    top_p: float | None = option(SampleConfig, "top_p", "Nucleus sampling mass in (0, 1].")
    seed: int | None = Field(None, description="Same seed, same names (default: random).")

    def inputs(self) -> tuple[list | None, bool]:
        if self.condition is None and self.conditions is None:
            return [None], True                 # an unconditional model's one condition
        return super().inputs()


class TagBody(Texts):
    pass


class SummarizeBody(Texts):
    beam: int | None = option(SummaryDecodeConfig, "beam", "Beam size (1 = greedy).")
    min_len: int | None = option(SummaryDecodeConfig, "min_len", "Fewest words before the summary may end.")
    max_len: int | None = option(SummaryDecodeConfig, "max_len", "Most words in a summary.")
    no_repeat_ngram: int | None = option(SummaryDecodeConfig, "no_repeat_ngram", "Block repeated n-grams of "
                                            "this size (0: off).")
    length_penalty: float | None = option(SummaryDecodeConfig, "length_penalty", "GNMT alpha; 0 disables.")


class ClassifyBody(Texts):
    top: int = Field(0, ge=0, description="Return the K most probable labels (0: all).")
    attention: bool = Field(False, description="Add each step's attention weight (attention-pooling models).")


Rows = list[list[float]]


class ForecastBody(Body):
    ITEM: ClassVar[str] = "history"
    ITEMS: ClassVar[str] = "histories"
    history: Rows | None = Field(None, description="Past rows, oldest first, one value per channel (the "
                                    "model reads the last `lookback`).")
    histories: list[Rows] | None = Field(None, description="Several histories; one forecast each.")
