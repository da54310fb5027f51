"""What is current: the active span and the attributes of `llmlens.context(...)`, in contextvars.

Contextvars make nesting right across asyncio tasks and threads started with a copied context.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._span import SpanHandle

current_span_var: ContextVar[SpanHandle | None] = ContextVar("llmlens_span", default=None)
# A flat dict of span fields every span started inside inherits; "metadata" holds extra keys.
context_attrs_var: ContextVar[dict[str, Any] | None] = ContextVar("llmlens_context", default=None)

CONTEXT_FIELDS = ("user_id", "session_id", "feature", "template_id", "template_version", "variables")


class context:
    """`with llmlens.context(user_id=..., session_id=..., ...)`: every span inside inherits these.

    Nested contexts merge, the inner value winning. Extra keyword arguments go to span metadata.
    """

    __slots__ = ("_attrs", "_token")

    def __init__(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        feature: str | None = None,
        template_id: str | None = None,
        template_version: str | None = None,
        variables: dict[str, Any] | None = None,
        **metadata: Any,
    ) -> None:
        attrs: dict[str, Any] = {}
        for key, value in (
            ("user_id", user_id),
            ("session_id", session_id),
            ("feature", feature),
            ("template_id", template_id),
            ("template_version", template_version),
            ("variables", variables),
        ):
            if value is not None:
                attrs[key] = value
        if metadata:
            attrs["metadata"] = metadata
        self._attrs = attrs
        self._token: Token[dict[str, Any] | None] | None = None

    def __enter__(self) -> context:
        parent = context_attrs_var.get()
        if parent:
            merged = {**parent, **self._attrs}
            if "metadata" in parent and "metadata" in self._attrs:
                merged["metadata"] = {**parent["metadata"], **self._attrs["metadata"]}
        else:
            merged = self._attrs
        self._token = context_attrs_var.set(merged or None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            context_attrs_var.reset(self._token)
            self._token = None


def current_context() -> dict[str, Any]:
    """A copy of the attributes of the enclosing `llmlens.context(...)` blocks."""
    return dict(context_attrs_var.get() or {})
