"""The 20-second chaos run (bench/chaos.py): Redis killed, MongoDB killed, PostgreSQL paused and a
server process killed under clients that post and resume; it fails on any acknowledged message
lost, duplicated, reordered or given a reused seq, on a client left behind, and on an HTTP 500."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_twenty_seconds_of_faults_lose_nothing() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--seconds", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert '"lost": 0' in result.stdout and "chaos: passed" in result.stdout
