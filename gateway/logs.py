"""Logging: structured JSON lines, phone numbers masked, query strings left out.

Access logs show method, path, status and time only: query strings carry phone numbers
(``/dev/sms?to=+850...``) and secrets (``?secret=``). Every record passes a filter that masks
anything shaped like a phone number, whoever logged it, so a careless message cannot leak one.
Tokens, API keys and PINs are never formatted into messages in the first place (the settings
keep them out of their repr).

Exceptions are where subscriber data hides: a database error's text carries the SQL parameters
or the offending row (``DETAIL: Key (msisdn)=(+850...)``, ``Failing row contains (...)``), and
an exception raised with a formatted value carries that value. So the handler renders every
traceback itself (:func:`render_exception`): the frames, file, line and function, as Python
prints them, and for each exception in the chain only its class (with its SQLSTATE, SQLite
error name or constraint where it has one) unless the class is one of :data:`SAFE_MESSAGES`.
The same rule holds for an exception passed as a log argument or quoted in a message.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import GatewayError
from gateway.numbers import mask
from store.errors import StoreError

# The project's exceptions whose messages are written to be shown or logged: reasons, order
# codes, field names, protocol faults. A class joins only if no message of it ever formats a
# phone number, address, PIN, SMS body or secret (phone masking still runs over them).
SAFE_MESSAGES: tuple[type[BaseException], ...] = (GatewayError, StoreError)

# Attributes that name what failed without quoting any value: asyncpg's SQLSTATE and schema
# names, sqlite3's error name, SQLAlchemy's error code, an OSError's errno.
_DIAGNOSTICS = (
    "sqlstate",
    "sqlite_errorname",
    "constraint_name",
    "table_name",
    "column_name",
    "errno",
)
_IDENTIFIER = re.compile(r"[\w.$-]{1,63}\Z", re.ASCII)

# "+8501912345678", "8501912345678", "+850 191 234 5678": 9 to 15 digits, optional +, spaces.
_PHONE = re.compile(r"(?<![\w*])\+?\d(?:[ -]?\d){8,14}(?!\w)")

# The attributes every LogRecord has; anything else came in through ``extra=``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def mask_phones(text: str) -> str:
    """Every phone number in ``text`` masked as :func:`gateway.numbers.mask` does."""
    return _PHONE.sub(lambda match: mask(match.group(0)), text)


def describe(error: BaseException) -> str:
    """One line for a log: the class and, only for :data:`SAFE_MESSAGES`, the message.

    ``sqlalchemy.exc.IntegrityError (message withheld; code=gkpj)``,
    ``asyncpg.exceptions.UniqueViolationError (message withheld; sqlstate=23505,
    constraint_name=customer_msisdn_key, table_name=customer)``.
    """
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    text = _text(error)
    if isinstance(error, SAFE_MESSAGES):
        return mask_phones(f"{name}: {text}" if text else name)
    facts = ", ".join(f"{attribute}={value}" for attribute, value in _diagnostics(error))
    detail = "; ".join(part for part in ("message withheld" if text else "", facts) if part)
    return f"{name} ({detail})" if detail else name


def render_exception(error: BaseException, tb: TracebackType | None = None) -> str:
    """A traceback as Python prints it, chained exceptions and groups included, with each
    exception's last line given by :func:`describe` instead of its message."""
    parts: list[str] = []
    _render(error, tb or error.__traceback__, parts, set())
    return "".join(parts).rstrip("\n")


class Redact(logging.Filter):
    """Makes a record's message safe before any formatter sees it.

    An exception given as the message or an argument is replaced by :func:`describe`; so is
    the text of the record's own exceptions quoted in the message (asyncio's "Task exception
    was never retrieved" quotes its ``repr``); then every phone number is masked, here and in
    any ``extra=`` text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _safe_argument(record.msg)  # log.error(error) logs str(error)
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_argument(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _safe_argument(arg) for key, arg in record.args.items()}
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep the template, not the arguments
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            for error in _chain(record.exc_info[1]):
                if not isinstance(error, SAFE_MESSAGES):
                    message = _withhold(message, error)
        record.msg = mask_phones(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key in _RECORD_FIELDS:
                continue
            if isinstance(value, BaseException):
                setattr(record, key, describe(value))
            elif isinstance(value, str):
                setattr(record, key, mask_phones(value))
        return True


class _SafeTracebacks(logging.Formatter):
    """Tracebacks by :func:`render_exception`, stacks with phone numbers masked."""

    def format(self, record: logging.LogRecord) -> str:
        # Another handler's formatter may have cached its own rendering of the traceback on
        # the record; never print that one.
        record.exc_text = None
        return super().format(record)

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        error, tb = ei[1], ei[2]
        if error is None:
            return "NoneType: None"
        return mask_phones(render_exception(error, tb))

    def formatStack(self, stack_info: str) -> str:
        return mask_phones(stack_info)  # frames and source lines only, never a value


class TextFormatter(_SafeTracebacks):
    """``time LEVEL logger message`` lines, tracebacks rendered safely."""


class JsonLogFormatter(_SafeTracebacks, JsonFormatter):
    """One JSON object a line, tracebacks rendered safely in ``exc_info``."""


class AccessLogger(AbstractAccessLogger):
    """``METHOD /path status seconds``: enough to read traffic, nothing about subscribers."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.4fs", request.method, request.path, response.status, time)


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """Root logging for a serving process: one handler on stderr, redacted, JSON or text.

    Uncaught exceptions (the main thread's and other threads') are logged through it too, so
    that a crash prints the same safe traceback instead of Python's own.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redact())
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonLogFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        formatter = TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per plugin, every start
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    logging.getLogger("okryu").critical("uncaught exception", exc_info=(kind, error, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    thread = args.thread.name if args.thread is not None else "a thread"
    logging.getLogger("okryu").critical(
        "uncaught exception in %s",
        thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _render(
    error: BaseException, tb: TracebackType | None, parts: list[str], seen: set[int]
) -> None:
    seen.add(id(error))
    cause, context = error.__cause__, error.__context__
    if cause is not None and id(cause) not in seen:
        _render(cause, cause.__traceback__, parts, seen)
        parts.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not error.__suppress_context__ and id(context) not in seen:
        _render(context, context.__traceback__, parts, seen)
        parts.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if tb is not None:
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.extract_tb(tb).format())
    parts.append(describe(error) + "\n")
    if isinstance(error, BaseExceptionGroup):
        count = len(error.exceptions)
        for number, member in enumerate(error.exceptions, 1):
            parts.append(f"+---------------- {number} of {count} ----------------\n")
            inner: list[str] = []
            _render(member, member.__traceback__, inner, seen)
            parts.extend(f"| {line}\n" for line in "".join(inner).splitlines())


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not cost the log line
        return "<unprintable>"


def _diagnostics(error: BaseException) -> Iterator[tuple[str, object]]:
    names = (*_DIAGNOSTICS, "code") if isinstance(error, SQLAlchemyError) else _DIAGNOSTICS
    for name in names:
        value = getattr(error, name, None)
        # Only identifiers and numbers: an attribute that holds a sentence may quote a value.
        if isinstance(value, int) and not isinstance(value, bool):
            yield name, value
        elif isinstance(value, str) and _IDENTIFIER.match(value):
            yield name, value


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception chained to it or grouped in it, each once."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)


def _safe_argument(arg: Any) -> Any:
    if isinstance(arg, BaseException) and not isinstance(arg, SAFE_MESSAGES):
        return describe(arg)
    return arg


def _withhold(message: str, error: BaseException) -> str:
    """``message`` with ``error``'s text and repr replaced by :func:`describe`."""
    try:
        quoted = {repr(error), str(error)}
    except Exception:
        return message
    # Very short texts (an empty message, a KeyError of one letter) would match by chance.
    for text in sorted((t for t in quoted if len(t) >= 4), key=len, reverse=True):
        message = message.replace(text, describe(error))
    return message
