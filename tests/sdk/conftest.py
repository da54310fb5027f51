"""SDK test fixtures: the SDK pointed at a capture server or a real llmlens server, torn down after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.sdk._capture import CaptureServer

import llmlens
from llmlens.sdk import _internal


@pytest.fixture(autouse=True)
def _sdk_off_after_test() -> Iterator[None]:
    """Each test starts with the SDK off and must not leave an SDK bug behind."""
    llmlens.shutdown(timeout=2)
    before = _internal.internal_error_count()
    yield
    llmlens.shutdown(timeout=2)
    assert _internal.internal_error_count() == before, "the SDK reported an internal error"


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    with CaptureServer() as cap:
        yield cap


@pytest.fixture
def init_capture(capture: CaptureServer) -> Callable[..., CaptureServer]:
    """`init_capture(**init_kwargs)`: start the SDK against the capture server."""

    def start(**kwargs: Any) -> CaptureServer:
        kwargs.setdefault("schedule_delay_s", 0.05)
        assert llmlens.init(url=capture.url, **kwargs)
        return capture

    return start
