"""Start-up failures: one line that names the setting and the cause, never a traceback::

okryu: cannot listen on 127.0.0.1:8080 (OKRYU_HOST/OKRYU_PORT): address already in use
okryu: cannot reach the database (OKRYU_DATABASE_URL): database "shop" does not exist
okryu: cannot reach Redis (OKRYU_REDIS_URL): Error 111 connecting to 127.0.0.1:6379. ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import GatewayError

__all__ = ["StartupError", "cause", "database_failures"]


class StartupError(GatewayError):
    """The gateway cannot start with what a setting names; ``str()`` is the line to print."""


def cause(error: BaseException, url: str | None = None) -> str:
    """``error`` in one line for an operator, with ``url``'s password (if any) masked."""
    if isinstance(error, OSError) and error.errno is not None and error.errno > 0:
        # asyncio words the same errno differently for bind and connect; the errno says it.
        text = os.strerror(error.errno).lower()
        if error.filename:
            text = f"{text}: {error.filename}"
    else:
        inner = getattr(error, "orig", None)  # SQLAlchemy wraps the driver's own error
        source = inner if isinstance(inner, BaseException) else error
        lines = [line.strip() for line in str(source).splitlines() if line.strip()]
        if lines:
            text = lines[0]
        else:
            text = "timed out" if isinstance(source, TimeoutError) else type(source).__name__
    for password in _passwords(url):
        text = text.replace(password, "***")
    return text


@contextmanager
def database_failures(url: str) -> Iterator[None]:
    """Opening the database at ``url`` (and migrating it): a failure is a :class:`StartupError`.

    A malformed URL, a driver not installed, a server, database or directory not there.
    """
    try:
        yield
    except (SQLAlchemyError, OSError, TimeoutError, ImportError, ValueError) as error:
        reason = cause(error, url)
        raise StartupError(f"cannot reach the database (OKRYU_DATABASE_URL): {reason}") from error


def _passwords(url: str | None) -> Iterator[str]:
    """The password in ``url``, as written and decoded, from its user part or its query."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        found = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    except ValueError:  # not a URL the client would accept either; it failed before connecting
        return
    for password in filter(None, found):
        yield password
        yield unquote(password)
