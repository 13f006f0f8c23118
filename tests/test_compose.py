"""compose.yaml describes the scale-out topology with the processes and settings RadRelay
really has. There is no Docker engine here, so the file is checked against the code instead."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from conftest import RADRELAY, ROOT
from radrelay.config import Settings

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
APP = ["migrate", "api", "worker", "gateway"]


class TestCompose:
    def test_topology(self) -> None:
        assert set(SERVICES) >= {"postgres", "redis", "s3", *APP}
        for name in ("postgres", "redis", "s3", "api", "worker", "gateway"):
            assert "healthcheck" in SERVICES[name], name

    def test_app_services_are_configured_only_by_known_settings(self) -> None:
        known = {f"RADRELAY_{name.upper()}" for name in Settings.model_fields}
        for name in APP:
            env = SERVICES[name]["environment"]
            assert set(env) <= known, set(env) - known
            assert env["RADRELAY_DATABASE_URL"].startswith("postgresql+asyncpg://")
            assert env["RADRELAY_REDIS_URL"].startswith("redis://")
        # Every API process must sign tokens with the same key.
        assert "RADRELAY_SECRET_KEY" in SERVICES["api"]["environment"]

    def test_commands_exist_in_the_cli(self) -> None:
        for name in APP:
            command = SERVICES[name]["command"]
            assert command[0] == "radrelay"
            result = subprocess.run(
                [RADRELAY, *command[1:], "--help"], capture_output=True, text=True
            )
            assert result.returncode == 0, f"{name}: {result.stderr}"
        health = SERVICES["worker"]["healthcheck"]["test"]
        assert health[1:] == ["radrelay", "worker", "--check"]

    def test_dockerfile_builds_what_compose_runs(self) -> None:
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert "pip install --no-cache-dir ." in dockerfile
        assert "npm run build" in dockerfile
        assert Path(ROOT / "frontend" / "package.json").exists()
