"""Logging policy: secrets and personal data never reach a log."""

from __future__ import annotations

import logging

# HTTP clients log full request URLs; the SMS gateway's carry phone numbers and message texts.
_URL_LOGGERS = ("httpx", "httpcore")


def quiet_url_loggers() -> None:
    for name in _URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_url_loggers()
