"""Logging set-up shared by every service: request ids in every line, text or JSON."""

from __future__ import annotations

import json
import logging
import sys

from nemo_server.common.context import RequestIdFilter


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def configure_logging(service: str, level: str = "INFO", json_lines: bool = False) -> None:
    """Route nemo and uvicorn logs to stderr with the request id on each line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s {service} [%(request_id)s] %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in ("alembic", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    # Access logs are replaced by our own request log line (with the request id).
    logging.getLogger("uvicorn.access").disabled = True
