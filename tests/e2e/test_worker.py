"""`mobimart worker` starts a Huey consumer on the embedded SQLite queue and stays up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def test_worker_starts_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "MOBIMART_VAR_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mobimart", "worker", "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (tmp_path / "jobs.db").exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        time.sleep(1)
        assert proc.poll() is None
        assert (tmp_path / "jobs.db").exists()
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert "SqliteStorage" in output
    assert "purge_expired_task" in output  # the periodic job is registered
