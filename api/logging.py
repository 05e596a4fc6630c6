"""Structured logs: one JSON object a line, with the request id. Nothing here ever formats a
request body, a path, a query string or a token, and RequestDataFilter strips them from what
Django, gunicorn and Python's warnings would otherwise write."""

import contextvars
import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from http import HTTPStatus

from gunicorn import glogging

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def configure(config: dict) -> None:
    """LOGGING_CONFIG: the LOGGING dictionary, with Python's warnings logged through it rather
    than printed, so they pass RequestDataFilter too."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


class RequestIDFilter(logging.Filter):
    def filter(self, record):
        # django.request logs a failed response after the middleware has returned (and reset
        # the context variable), but hands the request over: take the id from there.
        request = getattr(record, "request", None)
        record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        return True


# gunicorn's worker messages that quote the raw request line (path and query string) or the
# client's address after these words.
GUNICORN_REQUEST_MESSAGES = ("Invalid request", "Error handling request")
WARNING_PLACE = re.compile(r"^(?P<place>.*?:\d+: \w+):")


class RequestDataFilter(logging.Filter):
    """Paths hold claim codes and ids, query strings hold what a person needs; neither may
    reach a log. Django names the path in every failed response it logs ("Internal Server
    Error: /api/v1/referrals/claim/K7…"), gunicorn quotes the request line of a request it
    refuses, and a warning's text can quote a request's value (Django's naive-datetime
    warning). Such records keep what happened (the status, the kind of error, the warning's
    category and place), never to which URL or with which value."""

    def filter(self, record):
        name = record.name
        if name == "gunicorn.access":
            return False
        if name in ("django.request", "django.server") or name.startswith("django.security."):
            record.msg, record.args = status_phrase(getattr(record, "status_code", None)), ()
        elif name.startswith("gunicorn."):
            message = record.getMessage()
            for words in GUNICORN_REQUEST_MESSAGES:
                if message.startswith(words):
                    record.msg, record.args = words, ()
        elif name == "py.warnings":
            place = WARNING_PLACE.match(record.getMessage())
            record.msg, record.args = (place["place"] if place else "warning"), ()
        return True


def status_phrase(status) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Request failed"


class JSONFormatter(logging.Formatter):
    FIELDS = ("method", "route", "status", "duration_ms", "application", "task", "event")

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for field in self.FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


class RoutineAtDebug(logging.Filter):
    """On a logger whose INFO lines are routine (one per Celery task): they count as DEBUG, and
    are kept only when the configured level shows DEBUG."""

    def filter(self, record):
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(record.levelno)


class GunicornLogger(glogging.Logger):
    """gunicorn's own lines (start, workers, signals) in the same JSON as every other process's.
    It keeps no access log: paths can hold claim codes, and the API logs route patterns."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JSONFormatter())
