"""Cost from token usage: genai-prices plus custom price files, versioned, memoised for ingest."""

from . import _offline  # noqa: F401 - first: genai-prices is imported without its online updater
from ._book import PriceBook, PricedCost
from ._custom import PriceFileError
from ._library import LIBRARY_VERSION, SELF_HOSTED_PROVIDERS

__all__ = ["LIBRARY_VERSION", "SELF_HOSTED_PROVIDERS", "PriceBook", "PriceFileError", "PricedCost"]
