"""How configs are built and checked: nested dicts -> dataclasses, dotted overrides, presets.

`from_dict` rejects unknown keys, wrong types, values outside a `Literal`'s choices, non-finite floats and numbers
outside a field's `Range`, and names the dotted key at fault. So a typo in a config file, a `--set` item or a
checkpoint from a newer version fails with one line before any work starts, never halfway through a run.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar


class ConfigError(ValueError):
    """A configuration value is unknown, has the wrong type or lies outside its range."""


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric field, used as `Annotated[int, Range(1)]`; `open_low`: the bound itself is excluded."""
    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def check(self, value: float, dotted: str) -> None:
        too_low = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            raise ConfigError(f"config key '{dotted}' must be {self}, got {value!r}")

    def __str__(self) -> str:
        low = "" if self.low is None else f"{'>' if self.open_low else '>='} {_number(self.low)}"
        high = "" if self.high is None else f"<= {_number(self.high)}"
        return " and ".join(p for p in (low, high) if p)


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


# the numeric kinds the configs use
Count = Annotated[int, Range(1)]                 # 1, 2, ...
Size = Annotated[int, Range(0)]                  # 0, 1, ... (0 usually means "off" or "no limit")
Positive = Annotated[float, Range(0, open_low=True)]
NonNegative = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1)]         # probabilities, dropout rates, shares

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict, naming the dotted key of any unknown or bad value."""
    if not isinstance(data, dict):
        if prefix:                                 # a nested section: name its dotted key, without the trailing dot
            raise ConfigError(f"config key '{prefix[:-1]}' expects a mapping, got {data!r}")
        raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}'")
        kwargs[key] = _coerce(hints[key], value, dotted)
    return cls(**kwargs)


def make(cls: type[T], **options: Any) -> T:
    """`cls` with the options that are not None (None: "the config's default"), checked like a config file."""
    return from_dict(cls, {k: v for k, v in options.items() if v is not None})


def _coerce(hint: Any, value: Any, dotted: str) -> Any:
    limit = None
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        limit = next((e for e in extras if isinstance(e, Range)), None)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, dotted + ".")
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise ConfigError(f"config key '{dotted}' must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is tuple and isinstance(value, list):
        value = tuple(value)
    base = typing.get_origin(hint) or hint
    if isinstance(base, type) and not isinstance(base, types.GenericAlias):
        if not isinstance(value, base) or (base in (int, float) and isinstance(value, bool)):
            raise ConfigError(f"config key '{dotted}' expects {base.__name__}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{dotted}' must be a finite number, got {value!r}")
    if limit is not None:
        limit.check(value, dotted)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly nested dict of a config dataclass."""
    return dataclasses.asdict(config)


def override(config: T, dotted: str, value: Any) -> T:
    """Return a copy of `config` with one dotted key (for example 'optim.lr') set to `value`."""
    data = to_dict(config)
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown config key '{dotted}'")
        node = node[part]
    if last not in node:
        raise ConfigError(f"unknown config key '{dotted}'")
    node[last] = value
    return from_dict(type(config), data)


def build_setup(cls: type[T], presets: dict, preset: str = "base", config_file: str | Path | None = None,
                overrides: dict | None = None) -> T:
    """Defaults <- named preset <- JSON config file <- command-line overrides (dotted keys), each checked."""
    if preset not in presets:
        raise ConfigError(f"unknown preset '{preset}' (known: {', '.join(presets)})")
    setup = from_dict(cls, {})
    for key, value in presets[preset].items():
        setup = override(setup, key, value)
    if config_file:
        if not Path(config_file).is_file():
            from nmt.data import what_is
            kind = what_is(Path(config_file))
            raise ConfigError(f"cannot read config file {config_file}: "
                              + ("no such file" if kind == "no such file" else f"{kind}, not a JSON file"))
        try:
            data = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read config file {config_file}: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {config_file} must hold a JSON object, got {type(data).__name__}")
        setup = from_dict(cls, _merge(to_dict(setup), data))
    for key, value in (overrides or {}).items():
        setup = override(setup, key, value)
    return setup


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merge(base[key], value) if nested else value
    return out
