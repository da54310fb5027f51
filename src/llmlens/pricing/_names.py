"""Model-name variants to try when looking up a price: provider prefixes and dated snapshots."""

from __future__ import annotations

import re

# A trailing snapshot date: `-2024-08-06`, `-20240806`, `@20240620` (Vertex), `_20240806`.
_DATE_SUFFIX = re.compile(r"[-@_](?:20\d{2}-[01]\d-[0-3]\d|20\d{2}[01]\d[0-3]\d)$")


def strip_date_suffix(name: str) -> str:
    return _DATE_SUFFIX.sub("", name)


def name_variants(name: str) -> list[tuple[str | None, str]]:
    """(provider hinted by a prefix, model name) pairs, most specific first.

    `openrouter/anthropic/claude-3.5-sonnet` gives the whole name, then `anthropic/claude-3.5-sonnet`
    hinted `openrouter`, then `claude-3.5-sonnet` hinted `anthropic`; each followed by its undated form.
    """
    name = name.strip()
    variants: list[tuple[str | None, str]] = [(None, name)]
    rest = name
    while "/" in rest:
        prefix, rest = rest.split("/", 1)
        if rest:
            variants.append((prefix.rsplit("/", 1)[-1] or None, rest))
    with_undated: list[tuple[str | None, str]] = []
    for hint, variant in variants:
        with_undated.append((hint, variant))
        undated = strip_date_suffix(variant)
        if undated != variant and undated:
            with_undated.append((hint, undated))
    return with_undated
