"""SDK configuration: read once at `init`, from its arguments, else from `LLMLENS_*` variables."""

from __future__ import annotations

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

    from urllib.parse import urlsplit

    resolved_url = pick(url, "LLMLENS_URL")
    if resolved_url is None:
        return None
    if not resolved_url.startswith(("http://", "https://")) or not urlsplit(resolved_url).hostname:
        raise ValueError(
            f"llmlens url (init(url=...) or LLMLENS_URL) must be http(s)://host[:port][/prefix], got {resolved_url!r}"
        )
    if capture_content is None:
        capture_content = _env_bool(env.get("LLMLENS_CAPTURE_CONTENT"), "LLMLENS_CAPTURE_CONTENT")
    defaults = SDKConfig(url="")
    queue = max_queue_size or _env_number(env.get("LLMLENS_MAX_QUEUE_SIZE"), "LLMLENS_MAX_QUEUE_SIZE")
    batch = max_batch_size or _env_number(env.get("LLMLENS_MAX_BATCH_SIZE"), "LLMLENS_MAX_BATCH_SIZE")
    delay = schedule_delay_s or _env_number(env.get("LLMLENS_SCHEDULE_DELAY"), "LLMLENS_SCHEDULE_DELAY")
    timeout = request_timeout_s or _env_number(env.get("LLMLENS_TIMEOUT"), "LLMLENS_TIMEOUT")
    spool_bytes = spool_max_bytes or _env_number(env.get("LLMLENS_SPOOL_MAX_BYTES"), "LLMLENS_SPOOL_MAX_BYTES")
    return SDKConfig(
        url=resolved_url.rstrip("/"),
        api_key=pick(api_key, "LLMLENS_API_KEY"),
        project=pick(project, "LLMLENS_PROJECT"),
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
