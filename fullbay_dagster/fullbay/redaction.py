"""Keep the API key and token out of every message that leaves the client.

requests and urllib3 put the full URL, query string included, into exception
texts and DEBUG log lines; Fullbay authenticates through the query string, so
those texts would carry the key and the day's token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_QUERY_SECRET = re.compile(r"(?i)\b(key|token)=[^&\s\"'<>]*")
MASK = "***"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with query-string secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_installed = False


def install_urllib3_redaction() -> None:
    """urllib3 logs each request line (with its query string) at DEBUG; mask it."""
    global _installed
    if not _installed:
        for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
            logging.getLogger(name).addFilter(RedactingFilter())
        _installed = True
