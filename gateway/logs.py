"""Logging: structured JSON lines, phone numbers masked, query strings left out.

Access logs show method, path, status and time only: query strings carry phone numbers
(``/dev/sms?to=+850...``) and secrets (``?secret=``). Every record passes a filter that masks
anything shaped like a phone number, whoever logged it, so a careless message cannot leak one.
Tokens, API keys and PINs are never formatted into messages in the first place (the settings
keep them out of their repr).
"""

from __future__ import annotations

import logging
import re
import sys

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse
from pythonjsonlogger.json import JsonFormatter

from gateway.numbers import mask

# "+8501912345678", "8501912345678", "+850 191 234 5678": 9 to 15 digits, optional +, spaces.
_PHONE = re.compile(r"(?<![\w*])\+?\d(?:[ -]?\d){8,14}(?!\w)")


def mask_phones(text: str) -> str:
    """Every phone number in ``text`` masked as :func:`gateway.numbers.mask` does."""
    return _PHONE.sub(lambda match: mask(match.group(0)), text)


class MaskPhones(logging.Filter):
    """Masks phone numbers in the rendered message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phones(record.getMessage())
        record.args = None
        return True


class AccessLogger(AbstractAccessLogger):
    """``METHOD /path status seconds``: enough to read traffic, nothing about subscribers."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.4fs", request.method, request.path, response.status, time)


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """Root logging for a serving process: one handler on stderr, masked, JSON or text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskPhones())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per plugin, every start
