"""One Redis client per event loop (asyncio clients belong to the loop that made them)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

_clients: dict[tuple[str, int], Redis] = {}


def client(url: str) -> Redis:
    key = (url, id(asyncio.get_running_loop()))
    found = _clients.get(key)
    if found is None:
        found = _clients[key] = Redis.from_url(url)
    return found
