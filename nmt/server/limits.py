"""The server's limits on one request (413 naming the limit): how many inputs, how long each, how much work."""
from __future__ import annotations

from nmt.server.errors import ApiError
from nmt.server.settings import ServeSettings


def check_sizes(settings: ServeSettings, inputs: list, field: str) -> None:
    """413 naming the limit: more inputs than max_items, a text over max_chars, a history over max_rows."""
    if len(inputs) > settings.max_items:
        raise ApiError(413, "too_large", f"{len(inputs)} inputs; the limit is {settings.max_items} a request",
                       field=field, limit="max_items")
    for i, item in enumerate(inputs):
        if not isinstance(item, (str, list)):
            continue
        text = isinstance(item, str)
        limit, name, unit = (settings.max_chars, "max_chars", "characters") if text else \
            (settings.max_rows, "max_rows", "rows")
        if len(item) > limit:
            raise ApiError(413, "too_large", f"input {i} has {len(item):,} {unit}; the limit is {limit:,}",
                           field=field, limit=name)


def check_amounts(settings: ServeSettings, options: dict) -> None:
    """413 naming the limit for an option asking for too much work: `length` (characters to generate) over
    max_generate, `num_samples` over max_items."""
    for option, limit in (("length", "max_generate"), ("num_samples", "max_items")):
        value, most = options.get(option), getattr(settings, limit)
        if isinstance(value, int) and value > most:
            raise ApiError(413, "too_large", f"{option} {value:,} is over this server's limit of {most:,}",
                           field=option, limit=limit)
