"""However a library names a failed connection (error.type, an `exception` event, a status message),
the span's error type is `connection_error`; a connect *timeout* stays a `timeout`."""

from __future__ import annotations

import pytest
from tests.conventions._helpers import mapped

from llmlens.conventions import OtlpEvent

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai"}

# error.type values as instrumentations record them: the exception's (qualified) class name.
CONNECTION_ERROR_TYPES = [
    "APIConnectionError",  # openai / anthropic, OTel GenAI contrib
    "openai.APIConnectionError",
    "anthropic.APIConnectionError",
    "httpx.ConnectError",
    "httpcore.ConnectError",
    "httpx.RemoteProtocolError",  # server disconnected without a response, or mid-body
    "ConnectionRefusedError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "requests.exceptions.ConnectionError",
    "urllib3.exceptions.NewConnectionError",
    "aiohttp.client_exceptions.ClientConnectorError",
    "aiohttp.ClientConnectorDNSError",
    "aiohttp.ClientConnectorCertificateError",
    "aiohttp.ServerDisconnectedError",
    "aiohttp.ClientPayloadError",
    "http.client.RemoteDisconnected",
    "socket.gaierror",
    "ssl.SSLError",
    "ssl.SSLCertVerificationError",
    "requests.exceptions.SSLError",
    "connection_error",  # already normalised
]


@pytest.mark.parametrize("error_type", CONNECTION_ERROR_TYPES)
def test_error_type_naming_a_connection_failure(error_type: str) -> None:
    span = mapped({**CHAT, "error.type": error_type}, status_code=2)
    assert (span.status, span.error_type) == ("error", "connection_error")


@pytest.mark.parametrize(
    ("exception_type", "message"),
    [
        ("openai.APIConnectionError", "Connection error."),
        ("builtins.ConnectionRefusedError", "[Errno 111] Connection refused"),
        ("Error", "connect ECONNREFUSED 127.0.0.1:443"),  # Node.js
        ("Error", "getaddrinfo ENOTFOUND api.openai.com"),  # Node.js: not an invalid request
        ("Error", "read ECONNRESET"),
        ("URLError", "<urlopen error [Errno -2] Name or service not known>"),
        ("Exception", "Cannot connect to host api.openai.com:443 ssl:default [Connect call failed]"),
        ("Exception", "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        ("Exception", "Temporary failure in name resolution"),
    ],
)
def test_exception_event_naming_a_connection_failure(exception_type: str, message: str) -> None:
    event = OtlpEvent("exception", 0, {"exception.type": exception_type, "exception.message": message})
    span = mapped(CHAT, status_code=2, events=[event])
    assert (span.status, span.error_type) == ("error", "connection_error")


def test_status_message_naming_a_connection_failure() -> None:
    span = mapped(CHAT, status_code=2, status_message="APIConnectionError: Connection error.")
    assert span.error_type == "connection_error"


@pytest.mark.parametrize("error_type", ["APITimeoutError", "httpx.ConnectTimeout", "aiohttp.ServerTimeoutError"])
def test_timeouts_stay_timeouts(error_type: str) -> None:
    span = mapped({**CHAT, "error.type": error_type}, status_code=2, status_message="Connection timed out")
    assert span.error_type == "timeout"
