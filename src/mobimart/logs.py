"""Logging policy: secrets and personal data never reach a log."""

from __future__ import annotations

import logging

# HTTP clients log full request URLs; the SMS gateway's carry phone numbers and message texts.
_URL_LOGGERS = ("httpx", "httpcore")


def quiet_url_loggers() -> None:
    for name in _URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoQueryStrings) for f in access.filters):
        access.addFilter(_NoQueryStrings())


class _NoQueryStrings(logging.Filter):
    """The access log keeps paths and drops query strings: callbacks such as the SMS
    gateway's carry a shared secret, phone numbers and message texts there."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, sep, _ = args[2].partition("?")
            record.args = (*args[:2], path + ("?…" if sep else ""), *args[3:])
        return True


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_url_loggers()
