"""Custom price files (TOML or YAML) for self-hosted and negotiated models: parsing, validation, matching.

Format (TOML shown; YAML is the same shape, a top-level `models:` list)::

    [[models]]
    match = "ft:gpt-4o*"            # exact model name, or a glob (* ? [...]); case-insensitive
    provider = "openai"             # optional: only calls from this provider
    input_per_mtok = 3.75           # USD per million input tokens (required)
    output_per_mtok = 15.0          # USD per million output tokens (required)
    cache_read_per_mtok = 1.875     # optional; default: the input rate
    cache_write_per_mtok = 3.75     # optional; default: the input rate
    reasoning_per_mtok = 15.0       # optional; default: the output rate

The first entry that matches wins. Entries override genai-prices.
"""

from __future__ import annotations

import hashlib
import math
import pathlib
import re
import tomllib
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

from ._names import name_variants
from ._rates import Rates

_REQUIRED_RATES = ("input_per_mtok", "output_per_mtok")
_OPTIONAL_RATES = ("cache_read_per_mtok", "cache_write_per_mtok", "reasoning_per_mtok")
_FIELDS = frozenset({"match", "provider", *_REQUIRED_RATES, *_OPTIONAL_RATES})
_GLOB_CHARS = frozenset("*?[")


class PriceFileError(ValueError):
    """A custom price file that cannot be read or is invalid; the message names file, entry and field."""


@dataclass(frozen=True, slots=True)
class CustomPrice:
    """One entry of a custom price file."""

    match: str
    provider: str | None
    rates: Rates
    _pattern: re.Pattern[str]

    def matches(self, provider: str | None, name: str) -> bool:
        """Whether a call of `name` from `provider` gets this price.

        The name may carry provider prefixes (`vllm/my-llama`) or a snapshot date; a prefix also
        counts as the provider. An entry's provider is not checked when the call's is unknown.
        """
        wanted = self.provider
        given = provider.strip().lower() if provider else None
        for hint, variant in name_variants(name):
            if not self._pattern.fullmatch(variant):
                continue
            if wanted is None or given is None or wanted in (given, (hint or "").lower()):
                return True
        return False


@dataclass(frozen=True, slots=True)
class CustomPriceFile:
    path: pathlib.Path
    sha256_8: str
    prices: tuple[CustomPrice, ...]

    def find(self, provider: str | None, name: str) -> CustomPrice | None:
        for price in self.prices:
            if price.matches(provider, name):
                return price
        return None


def _entry_label(index: int, entry: dict[str, Any]) -> str:
    match = entry.get("match")
    return f"models[{index}]" + (f" (match={match!r})" if isinstance(match, str) else "")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _parse_entry(path: pathlib.Path, index: int, entry: object) -> CustomPrice:
    if not isinstance(entry, dict):
        raise PriceFileError(f"{path}: models[{index}]: must be a table/mapping, got {type(entry).__name__}")
    where = f"{path}: {_entry_label(index, entry)}"
    unknown = sorted(str(k) for k in entry if k not in _FIELDS)
    if unknown:
        raise PriceFileError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_FIELDS))})")
    match = entry.get("match")
    if not isinstance(match, str) or not match.strip():
        raise PriceFileError(f"{where}: field 'match': required, a non-empty model name or glob")
    provider = entry.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise PriceFileError(f"{where}: field 'provider': must be a non-empty string, got {provider!r}")
    numbers: dict[str, float | None] = {}
    for name in (*_REQUIRED_RATES, *_OPTIONAL_RATES):
        if name not in entry:
            if name in _REQUIRED_RATES:
                raise PriceFileError(f"{where}: field {name!r}: required (USD per million tokens)")
            numbers[name] = None
            continue
        number = _number(entry[name])
        if number is None:
            raise PriceFileError(
                f"{where}: field {name!r}: must be a non-negative number (USD per million tokens), got {entry[name]!r}"
            )
        numbers[name] = number
    match = match.strip()
    pattern = translate(match) if _GLOB_CHARS & set(match) else re.escape(match) + r"\Z"
    rates = Rates(
        input=numbers["input_per_mtok"] or 0.0,
        output=numbers["output_per_mtok"] or 0.0,
        cache_read=numbers["cache_read_per_mtok"],
        cache_write=numbers["cache_write_per_mtok"],
        reasoning=numbers["reasoning_per_mtok"],
    )
    return CustomPrice(
        match=match,
        provider=provider.strip().lower() if isinstance(provider, str) else None,
        rates=rates,
        _pattern=re.compile(pattern, re.IGNORECASE),
    )


def _decode(path: pathlib.Path, raw: bytes) -> object:
    suffix = path.suffix.lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PriceFileError(f"{path}: not UTF-8 text: {exc}") from exc
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PriceFileError(f"{path}: invalid TOML: {exc}") from exc
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PriceFileError(f"{path}: invalid YAML: {exc}") from exc
    raise PriceFileError(f"{path}: unsupported price file type {suffix or '(none)'!r}: use .toml, .yaml or .yml")


def load_custom_price_file(path: pathlib.Path) -> CustomPriceFile:
    """Read and validate a price file; raise PriceFileError naming the file, entry and field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot read price file: {exc.strerror or exc}") from exc
    return parse_custom_price_file(path, raw)


def parse_custom_price_file(path: pathlib.Path, raw: bytes) -> CustomPriceFile:
    """Validate the content of a price file (e.g. one a client sent); `path` names it in messages and its
    suffix says TOML or YAML. Raises PriceFileError naming the file, entry and field."""
    document = _decode(path, raw)
    if not isinstance(document, dict):
        raise PriceFileError(f"{path}: must contain a top-level 'models' list of price entries")
    unknown = sorted(str(k) for k in document if k != "models")
    if unknown:
        raise PriceFileError(f"{path}: unknown top-level key {unknown[0]!r} (expected only 'models')")
    models = document.get("models")
    if not isinstance(models, list):
        raise PriceFileError(f"{path}: 'models' must be a list of price entries (TOML: [[models]])")
    prices = tuple(_parse_entry(path, index, entry) for index, entry in enumerate(models))
    seen: dict[tuple[str, str | None], int] = {}
    for index, price in enumerate(prices):
        key = (price.match.lower(), price.provider)
        if key in seen:
            raise PriceFileError(
                f"{path}: models[{index}] (match={price.match!r}): duplicates models[{seen[key]}] "
                "(same match and provider); the later entry would never apply"
            )
        seen[key] = index
    return CustomPriceFile(path=path, sha256_8=hashlib.sha256(raw).hexdigest()[:8], prices=prices)
