"""Structured logging shared by every function of the service (packaged next to each handler).

One JSON object per line, so CloudWatch Logs Insights can filter on every field; callers pass fields, and
never key material or API keys.
"""

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.Handler):
    """Writes to whatever `sys.stdout` is at emit time (the Lambda runtime and test capture swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def get_logger(name: str) -> logging.Logger:
    """A JSON logger writing to stdout; records carry their fields in `extra={"fields": {...}}`."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        # The runtime's root handler would print every record a second time, as plain text.
        logger.propagate = False
    return logger
