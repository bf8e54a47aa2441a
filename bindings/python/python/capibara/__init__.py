"""Capibara in process.

``Capibara()`` builds the same composition ``capibara serve`` runs (embedded defaults, or
``Capibara.from_config(path_or_dict)``) and calls it directly: ``chat``, ``stream_chat``,
``embed``, ``ingest``, ``search``, ``ask`` and ``serve``. ``AsyncCapibara`` offers the same
calls as awaitables. Errors are ``CapibaraError`` subclasses named after what went wrong.
"""

from ._capibara import AsyncCapibara, AsyncChatEvents, Capibara, ChatEvents, Server, __version__
from ._errors import (
    CapibaraError,
    Closed,
    ContextTooLong,
    Forbidden,
    Internal,
    InvalidInput,
    NotFound,
    RateLimited,
    Timeout,
    TooLarge,
    Unauthorized,
    Unavailable,
    Upstream,
)

__all__ = [
    "AsyncCapibara",
    "AsyncChatEvents",
    "Capibara",
    "CapibaraError",
    "ChatEvents",
    "Closed",
    "ContextTooLong",
    "Forbidden",
    "Internal",
    "InvalidInput",
    "NotFound",
    "RateLimited",
    "Server",
    "Timeout",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "Upstream",
    "__version__",
]
