"""SDK configuration: read once at `init`, from its arguments, else from `LLMLENS_*` variables."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class SDKConfig:
    """Everything the SDK needs to know, fixed for the life of one `init`."""

    url: str
    api_key: str | None = None
    project: str | None = None
    service: str | None = None
    environment: str | None = None
    capture_content: bool = True
    max_queue_size: int = 10_000
    max_batch_size: int = 512
    schedule_delay_s: float = 1.0
    request_timeout_s: float = 10.0
    max_backoff_s: float = 30.0
    spool_dir: str | None = None
    spool_max_bytes: int = 100 * 1024 * 1024
    exit_timeout_s: float = 5.0
    # Mask secrets and PII before events leave the process: True (defaults), or a redaction config dict.
    redact: bool | dict[str, object] = False


def _env_bool(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _env_number(value: str | None, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _check_url(url: str) -> None:
    from urllib.parse import urlsplit

    problem = "" if url.startswith(("http://", "https://")) else "it is not http(s)"
    if not problem:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - parsing the port is the check: a bad one raises here, not later
        except ValueError as exc:
            problem = str(exc)
        else:
            problem = "" if parts.hostname else "it names no host"
    if problem:
        raise ValueError(
            f"llmlens url (init(url=...) or LLMLENS_URL) must be http(s)://host[:port][/prefix], got {url!r}: {problem}"
        )


def _check_header_value(value: str | None, name: str) -> None:
    # Sent as an HTTP header: a line break (a key read from a file with its newline) would make every
    # send fail in the exporter thread, so it is refused here, where the app can be told.
    if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"llmlens {name} must not contain line breaks or other control characters")


def resolve_config(
    *,
    url: str | None = None,
    api_key: str | None = None,
    project: str | None = None,
    service: str | None = None,
    environment: str | None = None,
    capture_content: bool | None = None,
    max_queue_size: int | None = None,
    max_batch_size: int | None = None,
    schedule_delay_s: float | None = None,
    request_timeout_s: float | None = None,
    spool_dir: str | None = None,
    spool_max_bytes: int | None = None,
    environ: Mapping[str, str] | None = None,
    redact: bool | dict[str, object] | None = None,
) -> SDKConfig | None:
    """Merge `init` arguments over `LLMLENS_*` variables; None when no URL is known (SDK stays off)."""
    env = os.environ if environ is None else environ

    def pick(arg: str | None, var: str) -> str | None:
        if arg is not None:
            return arg
        value = env.get(var)
        return value if value else None

    resolved_url = pick(url, "LLMLENS_URL")
    if resolved_url is None:
        return None
    _check_url(resolved_url)
    if capture_content is None:
        capture_content = _env_bool(env.get("LLMLENS_CAPTURE_CONTENT"), "LLMLENS_CAPTURE_CONTENT")
    defaults = SDKConfig(url="")
    queue = max_queue_size or _env_number(env.get("LLMLENS_MAX_QUEUE_SIZE"), "LLMLENS_MAX_QUEUE_SIZE")
    batch = max_batch_size or _env_number(env.get("LLMLENS_MAX_BATCH_SIZE"), "LLMLENS_MAX_BATCH_SIZE")
    delay = schedule_delay_s or _env_number(env.get("LLMLENS_SCHEDULE_DELAY"), "LLMLENS_SCHEDULE_DELAY")
    timeout = request_timeout_s or _env_number(env.get("LLMLENS_TIMEOUT"), "LLMLENS_TIMEOUT")
    spool_bytes = spool_max_bytes or _env_number(env.get("LLMLENS_SPOOL_MAX_BYTES"), "LLMLENS_SPOOL_MAX_BYTES")
    # Checked here, where a bad value is logged and leaves the SDK off: later it would stall the
    # exporter thread (a batch of 0) or spin it (a delay of 0).
    for value, name in (
        (queue, "max_queue_size or LLMLENS_MAX_QUEUE_SIZE"),
        (batch, "max_batch_size or LLMLENS_MAX_BATCH_SIZE"),
    ):
        if value is not None and not (math.isfinite(value) and value >= 1 and value == int(value)):
            raise ValueError(f"llmlens {name} must be a whole number of at least 1, got {value!r}")
    for value, name in (
        (delay, "schedule_delay_s or LLMLENS_SCHEDULE_DELAY"),
        (timeout, "request_timeout_s or LLMLENS_TIMEOUT"),
        (spool_bytes, "spool_max_bytes or LLMLENS_SPOOL_MAX_BYTES"),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"llmlens {name} must be a number above 0, got {value!r}")
    resolved_key = pick(api_key, "LLMLENS_API_KEY")
    resolved_project = pick(project, "LLMLENS_PROJECT")
    _check_header_value(resolved_key, "api_key (init(api_key=...) or LLMLENS_API_KEY)")
    _check_header_value(resolved_project, "project (init(project=...) or LLMLENS_PROJECT)")
    return SDKConfig(
        url=resolved_url.rstrip("/"),
        api_key=resolved_key,
        project=resolved_project,
        service=pick(service, "LLMLENS_SERVICE"),
        environment=pick(environment, "LLMLENS_ENVIRONMENT"),
        capture_content=defaults.capture_content if capture_content is None else capture_content,
        max_queue_size=int(queue) if queue else defaults.max_queue_size,
        max_batch_size=int(batch) if batch else defaults.max_batch_size,
        schedule_delay_s=float(delay) if delay else defaults.schedule_delay_s,
        request_timeout_s=float(timeout) if timeout else defaults.request_timeout_s,
        spool_dir=pick(spool_dir, "LLMLENS_SPOOL_DIR"),
        spool_max_bytes=int(spool_bytes) if spool_bytes else defaults.spool_max_bytes,
        redact=redact if redact is not None else bool(_env_bool(env.get("LLMLENS_REDACT"), "LLMLENS_REDACT")),
    )
