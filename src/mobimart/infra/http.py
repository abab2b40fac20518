"""Outbound HTTP (payment providers, merchants' webhooks): one place that makes clients, so
tests can route them to in-process apps."""

from __future__ import annotations

from collections.abc import Callable

import httpx

Factory = Callable[[], httpx.AsyncClient]


def _default() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10.0, follow_redirects=False)


factory: Factory = _default


def client() -> httpx.AsyncClient:
    return factory()
