"""Replacing methods on provider classes or client instances, reversibly and only once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_ORIGINAL = "__llmlens_original__"

# (owner, attribute name, original value or None when it was inherited) for uninstrument.
_patched: dict[str, list[tuple[Any, str, Any]]] = {}


def is_patched(owner: Any, name: str) -> bool:
    current = owner.__dict__.get(name) if hasattr(owner, "__dict__") else None
    return current is not None and hasattr(current, _ORIGINAL)


def patch_method(
    group: str,
    owner: Any,
    name: str,
    make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> None:
    """Replace `owner.name` (a class's function or an instance's bound method) by a wrapper of it."""
    if is_patched(owner, name):
        return
    had_own = name in owner.__dict__
    original = getattr(owner, name)
    wrapper = make_wrapper(original)
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, _ORIGINAL, original)
    setattr(owner, name, wrapper)
    _patched.setdefault(group, []).append((owner, name, original if had_own else None))


def unpatch_group(group: str) -> None:
    for owner, name, original in reversed(_patched.pop(group, [])):
        if original is None:
            try:
                delattr(owner, name)
            except AttributeError:
                pass
        else:
            setattr(owner, name, original)
