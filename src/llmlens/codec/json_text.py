"""JSON text from outside parsed without letting its shape raise anything but a named ValueError.

Python's parser fails on two shapes valid JSON may have: nesting deeper than the interpreter's
recursion limit (RecursionError, ~1000 levels) and integers longer than the int-from-text digit limit
(4300 digits). The first is refused with a message naming the depth; the second is read again with
such integers kept as their digits in a string, so the rest of the document (a batch) still counts.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from llmlens.model import MAX_JSON_DEPTH

__all__ = ["JsonTooDeep", "loads_untrusted"]


class JsonTooDeep(ValueError):
    """The text nests deeper than the parser can follow."""

    def __init__(self) -> None:
        super().__init__(
            f"JSON is nested too deeply to parse (the parser follows fewer than {sys.getrecursionlimit()} "
            f"levels; values deeper than {MAX_JSON_DEPTH} levels are cut when stored)"
        )


def loads_untrusted(text: str | bytes | bytearray) -> Any:
    """`json.loads`, raising JSONDecodeError for text that is not JSON and JsonTooDeep for nesting it
    cannot follow; integers too long to convert come back as strings of their digits."""
    try:
        return json.loads(text)
    except RecursionError:
        raise JsonTooDeep from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError:
        # Only the digit limit raises a plain ValueError here; read the text again around it.
        pass
    try:
        return json.loads(text, parse_int=_int_or_digits)
    except RecursionError:
        raise JsonTooDeep from None


def _int_or_digits(digits: str) -> int | str:
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        return digits
    return int(digits)
