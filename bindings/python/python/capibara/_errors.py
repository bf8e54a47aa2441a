"""Exceptions raised by Capibara: one class per kind of failure, each also deriving from the
built-in exception a Python caller would expect (``InvalidInput`` is a ``ValueError``,
``Timeout`` a ``TimeoutError``, ...). ``code`` is the error code the HTTP API returns."""

from __future__ import annotations


class CapibaraError(Exception):
    """Base class of every Capibara error; ``str(error)`` carries the full cause."""

    code: str = "internal"
    #: For ``Upstream``: the upstream's HTTP status.
    status: int | None = None
    #: For ``RateLimited``: seconds the limiter asked to wait, when it said.
    retry_after: float | None = None


class InvalidInput(CapibaraError, ValueError, TypeError):
    """The request itself is wrong; sending it again unchanged fails again."""

    code = "invalid_input"


class NotFound(CapibaraError, LookupError):
    """The named thing does not exist."""

    code = "not_found"


class Unauthorized(CapibaraError, PermissionError):
    """Credentials are missing or invalid."""

    code = "unauthorized"


class Forbidden(CapibaraError, PermissionError):
    """Credentials are valid but do not allow this."""

    code = "forbidden"


class RateLimited(CapibaraError):
    """Too many requests; retry after ``retry_after`` seconds when set."""

    code = "rate_limited"


class Unavailable(CapibaraError, ConnectionError):
    """A dependency cannot be reached or is not configured; retrying later may succeed."""

    code = "unavailable"


class Timeout(CapibaraError, TimeoutError):
    """An operation ran out of time; retrying may succeed."""

    code = "timeout"


class Upstream(CapibaraError):
    """An upstream service answered with an error status (``status``)."""

    code = "upstream_error"


class ContextTooLong(CapibaraError, ValueError):
    """The prompt does not fit the model's context window."""

    code = "context_too_long"


class TooLarge(CapibaraError, ValueError):
    """A payload is larger than the configured limit."""

    code = "too_large"


class Internal(CapibaraError):
    """A failure inside Capibara."""

    code = "internal"


class Closed(CapibaraError):
    """The ``Capibara`` was closed before this call."""

    code = "closed"
