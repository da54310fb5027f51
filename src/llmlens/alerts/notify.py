"""Notifications of alert transitions: a signed JSON webhook, Slack incoming webhooks, the server log.

One notification per transition. Deliveries run on a background thread with retries and
exponential backoff; the backoff sleeps on an event so shutdown cuts it short.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .state import FIRING, PENDING, RESOLVED, Transition, json_default, to_json

logger = logging.getLogger("llmlens.alerts")

NOTIFIER_TYPES = ("webhook", "slack", "log")
SIGNATURE_HEADER = "X-LLMLens-Signature"
PAYLOAD_VERSION = 1


class NotifierError(ValueError):
    """A bad `[[notifiers]]` entry; the message names it."""


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    name: str
    type: str
    url: str = ""
    secret: str = ""
    events: tuple[str, ...] = (FIRING, RESOLVED)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    max_attempts: int = 5
    backoff_s: float = 1.0  # first retry after this, doubling up to 60 s


def parse_notifiers(docs: Iterable[Mapping[str, Any]]) -> list[NotifierConfig]:
    """`[[notifiers]]` tables; without any, alerts go to the server log."""
    found: list[NotifierConfig] = []
    for i, doc in enumerate(docs):
        kind = doc.get("type")
        if kind not in NOTIFIER_TYPES:
            raise NotifierError(f"notifiers[{i}]: type must be one of {', '.join(NOTIFIER_TYPES)}, got {kind!r}")
        name = str(doc.get("name") or (kind if i == 0 else f"{kind}-{i}"))
        url = str(doc.get("url") or "")
        if kind != "log" and not url.startswith(("http://", "https://")):
            raise NotifierError(f"notifiers[{i}] ({name}): url must be http(s)://..., got {url!r}")
        events = doc.get("events", (FIRING, RESOLVED))
        if isinstance(events, str) or not all(e in (PENDING, FIRING, RESOLVED) for e in events):
            raise NotifierError(f"notifiers[{i}] ({name}): events must be a list of pending, firing, resolved")
        headers = doc.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise NotifierError(f"notifiers[{i}] ({name}): headers must be a table")
        found.append(
            NotifierConfig(
                name=name,
                type=kind,
                url=url,
                secret=str(doc.get("secret") or ""),
                events=tuple(events),
                headers={str(k): str(v) for k, v in headers.items()},
                timeout_s=float(doc.get("timeout_s", 10.0)),
                max_attempts=max(1, int(doc.get("max_attempts", 5))),
                backoff_s=float(doc.get("backoff_s", 1.0)),
            )
        )
    return found or [NotifierConfig(name="log", type="log")]


def sign(body: bytes, secret: str) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, the value of X-LLMLens-Signature."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    return hmac.compare_digest(sign(body, secret), header)


def event_name(transition: Transition) -> str | None:
    """What a transition is worth telling: pending, firing, or resolved after firing."""
    if transition.state == RESOLVED:
        return RESOLVED if transition.previous_state == FIRING else None
    return transition.state


def webhook_payload(transition: Transition) -> dict[str, Any]:
    """The documented JSON body (docs/alerts.md): one object per transition."""
    details = transition.details
    return {
        "version": PAYLOAD_VERSION,
        "id": transition.id,
        "event": f"alert.{transition.state}",
        "project": transition.project,
        "rule": details.get("rule_spec", {"name": transition.rule}),
        "state": transition.state,
        "previous_state": transition.previous_state,
        "at": transition.at,
        "value": transition.value,
        "threshold": transition.threshold,
        "unit": details.get("unit"),
        "sample_size": transition.sample_size,
        "message": transition.message,
        "window": {"start": details.get("window_start"), "end": details.get("window_end")},
        "baseline": details.get("baseline", {}),
        "attribution": details.get("attribution", {}),
        "links": details.get("links", {}),
    }


_EMOJI = {FIRING: ":rotating_light:", RESOLVED: ":white_check_mark:", PENDING: ":hourglass:"}


def slack_payload(transition: Transition) -> dict[str, Any]:
    """Slack incoming-webhook message: a text fallback and blocks with the attribution and links."""
    links = transition.details.get("links", {})
    title = f"{_EMOJI.get(transition.state, '')} [{transition.state.upper()}] {transition.rule} ({transition.project})"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{transition.message}"}},
    ]
    link_parts = []
    if links.get("traces"):
        link_parts.append(f"<{links['traces']}|traces>")
    for i, url in enumerate(links.get("examples", [])[:3]):
        link_parts.append(f"<{url}|example {i + 1}>")
    if links.get("alerts"):
        link_parts.append(f"<{links['alerts']}|alerts>")
    if link_parts:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(link_parts)}]})
    return {"text": f"{title}: {transition.message}", "blocks": blocks}


Sleep = Callable[[float], bool]  # waits, returns True when interrupted


class NotificationDispatcher:
    """Delivers transitions to the configured notifiers on one background thread."""

    def __init__(
        self,
        notifiers: list[NotifierConfig],
        *,
        transport: httpx.BaseTransport | None = None,
        rule_notifiers: Callable[[Transition], tuple[str, ...]] | None = None,
    ) -> None:
        self.notifiers = notifiers
        self._transport = transport
        self._rule_notifiers = rule_notifiers
        self._queue: queue.Queue[Transition | None] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0
        self._pending_by_project: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmlens-alert-notify", daemon=True)
            self._thread.start()

    def submit(self, transition: Transition) -> None:
        if event_name(transition) is None:
            return
        with self._idle:
            self._pending += 1
            self._pending_by_project[transition.project] = self._pending_by_project.get(transition.project, 0) + 1
        self.start()
        self._queue.put(transition)

    def pending(self, project: str) -> int:
        """Transitions of `project` submitted and not yet delivered or given up."""
        with self._idle:
            return self._pending_by_project.get(project, 0)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every submitted transition is delivered or given up; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while True:
            transition = self._queue.get()
            if transition is None:
                return
            try:
                self.deliver(transition)
            except Exception:
                logger.exception("alert notification %s failed", transition.id)
            finally:
                with self._idle:
                    self._pending -= 1
                    left = self._pending_by_project.pop(transition.project) - 1
                    if left:
                        self._pending_by_project[transition.project] = left
                    self._idle.notify_all()

    def deliver(self, transition: Transition) -> None:
        """Send one transition to every notifier that wants it (synchronously, with retries)."""
        event = event_name(transition)
        if event is None:
            return
        wanted = self._rule_notifiers(transition) if self._rule_notifiers else ()
        for notifier in self.notifiers:
            if event not in notifier.events or (wanted and notifier.name not in wanted):
                continue
            if notifier.type == "log":
                self._log(transition)
                continue
            payload = webhook_payload(transition) if notifier.type == "webhook" else slack_payload(transition)
            body = to_json(payload).encode()
            if self._post(notifier, transition, body):
                self.delivered += 1
            else:
                self.failed += 1

    def _log(self, transition: Transition) -> None:
        level = logging.WARNING if transition.state == FIRING else logging.INFO
        logger.log(level, "alert %s [%s] %s", transition.state, transition.project, transition.message)

    def _post(self, notifier: NotifierConfig, transition: Transition, body: bytes) -> bool:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "llmlens-alerts",
            "X-LLMLens-Event": f"alert.{transition.state}",
            "X-LLMLens-Delivery": transition.id,
            **notifier.headers,
        }
        if notifier.secret:
            headers[SIGNATURE_HEADER] = sign(body, notifier.secret)
        delay = notifier.backoff_s
        with httpx.Client(timeout=notifier.timeout_s, transport=self._transport) as client:
            for attempt in range(1, notifier.max_attempts + 1):
                problem = ""
                try:
                    response = client.post(notifier.url, content=body, headers=headers)
                    if response.status_code < 300:
                        return True
                    problem = f"HTTP {response.status_code}"
                    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                        break  # the receiver refuses this body: retrying will not help
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if attempt < notifier.max_attempts:
                    logger.info(
                        "alert notification %s to %s failed (%s); retry %d in %.1f s",
                        transition.id,
                        notifier.name,
                        problem,
                        attempt,
                        delay,
                    )
                    if self._stop.wait(delay):
                        break
                    delay = min(delay * 2, 60.0)
        logger.warning("alert notification %s to %s given up: %s", transition.id, notifier.name, problem)
        return False


__all__ = [
    "SIGNATURE_HEADER",
    "NotificationDispatcher",
    "NotifierConfig",
    "NotifierError",
    "event_name",
    "json_default",
    "parse_notifiers",
    "sign",
    "slack_payload",
    "verify_signature",
    "webhook_payload",
]
