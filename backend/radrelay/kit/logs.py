"""Logging hygiene. Browsers pass the access token of the live-events socket in the query
string (they cannot set headers on a WebSocket), and servers log request lines: redact it."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"((?:access_)?token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg = _TOKEN.sub(r"\1[redacted]", message)
            record.args = ()
        return True


def redact_tokens(*logger_names: str) -> None:
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
