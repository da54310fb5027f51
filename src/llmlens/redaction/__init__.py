"""PII and secret redaction for spans and feedback: pure functions, stdlib only (the SDK uses it too)."""

from ._patterns import BUILTIN, DEFAULT_PATTERNS, Pattern, luhn_valid
from ._redactor import CONTENT_FIELDS, MODES, RedactionConfigError, Redactor

__all__ = [
    "BUILTIN",
    "CONTENT_FIELDS",
    "DEFAULT_PATTERNS",
    "MODES",
    "Pattern",
    "RedactionConfigError",
    "Redactor",
    "luhn_valid",
]
