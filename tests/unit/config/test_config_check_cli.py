"""A bad setting stops `tgstream` with exit 2 and one line naming the env var."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _config_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in {name.upper() for name in env}}
    return subprocess.run(
        [sys.executable, "-m", "tgstream", "config", "check"],
        env={**clean, **env, "COLUMNS": "200"},
        cwd=tmp_path,  # no .env here
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("DATABASE_URL", "mysql://db/x"),
        ("MESSAGES_PARTITIONS", "0"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token"),
    ],
)
def test_bad_value_exits_2_naming_the_variable(tmp_path: Path, var: str, value: str) -> None:
    result = _config_check(tmp_path, **{var: value})

    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, result.stderr
    assert var in error_lines[0]
    assert "Traceback" not in result.stderr


def test_secrets_are_masked_when_config_is_valid(tmp_path: Path) -> None:
    result = _config_check(tmp_path, TELEGRAM_BOT_TOKEN="42:very-secret-value")

    assert result.returncode == 0, result.stderr
    assert "very-secret-value" not in result.stdout
