"""The job queue on both of its storages: SQLite (embedded default) and Redis (scale-out)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from huey import RedisHuey, SqliteHuey

from mobimart.infra.jobs import make_huey
from mobimart.settings import get_settings
from tests.conftest import absent

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.parametrize("storage", ["sqlite", "redis"])
def test_enqueued_job_runs_once_from_the_configured_storage(storage: str, tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"var_dir": tmp_path, "redis_url": None})
    if storage == "redis":
        if not _redis_available():
            absent(f"Redis not reachable at {REDIS_URL}")
        settings = settings.model_copy(update={"redis_url": REDIS_URL})
    huey = make_huey(settings)
    assert isinstance(huey, RedisHuey if storage == "redis" else SqliteHuey)
    huey.flush()
    ran: list[str] = []

    @huey.task()
    def record(value: str) -> str:
        ran.append(value)
        return value.upper()

    marker = uuid.uuid4().hex
    result = record(marker)
    assert huey.pending_count() == 1
    task = huey.dequeue()
    assert task is not None
    huey.execute(task)
    assert ran == [marker]
    assert result.get() == marker.upper()
    assert huey.dequeue() is None
    huey.flush()
