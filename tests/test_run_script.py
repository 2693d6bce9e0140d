"""`make run`'s script, as a person would start it: it refuses to expose development mode."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_development_mode_refuses_to_listen_beyond_this_machine() -> None:
    if (ROOT / ".env").exists():
        pytest.skip("a local .env may set SECRET_KEY: this checks the script as a fresh checkout has it")
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "MONGODB_URL")}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run_server.sh")],
        env={**env, "HOST": "0.0.0.0", "PORT": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Refusing to serve on 0.0.0.0 without a SECRET_KEY" in result.stderr
