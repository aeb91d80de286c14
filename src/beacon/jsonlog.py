"""JSON-lines logging: one JSON object per record, for the journal or a log shipper.

Use it as a ``logging`` formatter (``demo/settings.py`` does in production)::

    "formatters": {"json": {"()": "beacon.jsonlog.JsonLinesFormatter"}}

A record becomes ``{"time", "level", "logger", "message", "pid"}`` plus ``"exc"``
(the traceback) when it carries one. Only the formatted message is written: the
``extra`` fields and arguments that a library attaches to a record (Celery attaches
a task's arguments, for instance) are left out, so a notification's text never
reaches the logs through them. Beacon itself never logs frame text or session keys.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonLinesFormatter(logging.Formatter):
    """Format a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False, default=str)
