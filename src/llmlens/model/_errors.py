"""Map whatever a provider, SDK or convention says about a failure onto our ErrorType."""

from __future__ import annotations

from ._kinds import ErrorType

# Refused, unresolvable, reset, TLS failure, cut off: the names Python, httpx, aiohttp, requests,
# urllib3, the provider SDKs and the OS give these, and the messages they carry.
_CONNECTION_FRAGMENTS = (
    "connectionerror",  # APIConnectionError, requests' ConnectionError, urllib3's NewConnectionError
    "connection error",
    "connection_error",  # e.g. an `api_connection_error` code
    "connecterror",  # httpx / httpcore ConnectError
    "clientconnector",  # aiohttp ClientConnectorError and its DNS, SSL and certificate subclasses
    "clientoserror",
    "clientpayloaderror",
    "serverdisconnected",
    "server disconnected",
    "remotedisconnected",
    "remoteprotocolerror",
    "connectionrefused",
    "connection refused",
    "econnrefused",
    "connectionreset",
    "connection reset",
    "econnreset",
    "connectionaborted",
    "connection aborted",
    "econnaborted",
    "brokenpipe",
    "broken pipe",
    "peer closed connection",
    "connect call failed",
    "cannot connect",
    "could not connect",
    "unable to connect",
    "failed to establish a new connection",
    "no route to host",
    "ehostunreach",
    "network is unreachable",
    "enetunreach",
    "gaierror",
    "name or service not known",
    "nodename nor servname",
    "name resolution",
    "getaddrinfo",
    "could not resolve host",
    "enotfound",
    "eai_again",
    "dns",
    "sslerror",  # ssl.SSLError, requests' SSLError
    "sslcertverification",
    "certificate verify failed",
    "certificate_verify_failed",
    "[ssl",
    "handshake",
)

# Checked in order; the first fragment found in the lower-cased text wins.
_FRAGMENTS: tuple[tuple[str, ErrorType], ...] = (
    ("ratelimit", ErrorType.RATE_LIMIT),
    ("rate_limit", ErrorType.RATE_LIMIT),
    ("rate limit", ErrorType.RATE_LIMIT),
    ("too many requests", ErrorType.RATE_LIMIT),
    ("quota", ErrorType.RATE_LIMIT),
    ("overloaded", ErrorType.SERVER_ERROR),
    ("timeout", ErrorType.TIMEOUT),
    ("timed out", ErrorType.TIMEOUT),
    ("deadline", ErrorType.TIMEOUT),
    # After the timeouts (a connect timeout is a timeout) and before "apierror" (an APIConnectionError
    # is a connection failure): the many ways clients and OSes say the connection itself failed.
    *((fragment, ErrorType.CONNECTION_ERROR) for fragment in _CONNECTION_FRAGMENTS),
    ("contentfilter", ErrorType.CONTENT_FILTER),
    ("content_filter", ErrorType.CONTENT_FILTER),
    ("content filter", ErrorType.CONTENT_FILTER),
    ("content_policy", ErrorType.CONTENT_FILTER),
    ("safety", ErrorType.CONTENT_FILTER),
    ("authentication", ErrorType.AUTH),
    ("permissiondenied", ErrorType.AUTH),
    ("permission_denied", ErrorType.AUTH),
    ("unauthorized", ErrorType.AUTH),
    ("invalid_api_key", ErrorType.AUTH),
    ("badrequest", ErrorType.INVALID_REQUEST),
    ("bad_request", ErrorType.INVALID_REQUEST),
    ("invalid_request", ErrorType.INVALID_REQUEST),
    ("invalidrequest", ErrorType.INVALID_REQUEST),
    ("unprocessable", ErrorType.INVALID_REQUEST),
    ("notfound", ErrorType.INVALID_REQUEST),
    ("not_found", ErrorType.INVALID_REQUEST),
    ("internalservererror", ErrorType.SERVER_ERROR),
    ("internal_server_error", ErrorType.SERVER_ERROR),
    ("server_error", ErrorType.SERVER_ERROR),
    ("apierror", ErrorType.SERVER_ERROR),
    ("service unavailable", ErrorType.SERVER_ERROR),
    ("bad gateway", ErrorType.SERVER_ERROR),
)

_BY_STATUS = {
    400: ErrorType.INVALID_REQUEST,
    401: ErrorType.AUTH,
    403: ErrorType.AUTH,
    404: ErrorType.INVALID_REQUEST,
    408: ErrorType.TIMEOUT,
    409: ErrorType.INVALID_REQUEST,
    413: ErrorType.INVALID_REQUEST,
    422: ErrorType.INVALID_REQUEST,
    429: ErrorType.RATE_LIMIT,
    504: ErrorType.TIMEOUT,
    529: ErrorType.SERVER_ERROR,
}


def error_type_from_status(status: int) -> ErrorType | None:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ErrorType.SERVER_ERROR
    if status >= 400:
        return ErrorType.INVALID_REQUEST
    return None


def classify_error(*texts: str | None, status: int | None = None) -> ErrorType:
    """Classify from exception class names, error codes or messages, and an HTTP status if known.

    Text wins over status when it is specific (an `APITimeoutError` has no status; a 400 may be a
    content-filter refusal). Already-normalised values pass through.
    """
    for text in texts:
        if not text:
            continue
        low = text.strip().lower()
        try:
            return ErrorType(low)
        except ValueError:
            pass
        squashed = low.replace(" ", "").replace("-", "")
        for fragment, kind in _FRAGMENTS:
            if fragment in low or fragment in squashed:
                return kind
    if status is not None:
        by_status = error_type_from_status(status)
        if by_status is not None:
            return by_status
    return ErrorType.OTHER
