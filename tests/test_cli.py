"""The command line contracts that operators and scripts rely on."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pydicom

from conftest import RADRELAY, ROOT, Server, login, server_env


class TestHospitalsAndUsers:
    def test_create_commands_are_idempotent(self, server: Server) -> None:
        code = f"C{uuid.uuid4().hex[:6].upper()}"
        ae = f"AE_{code}"
        first = server.cli("hospitals", "create", code, "--name", "乡镇卫生院 Township", "--ae", ae)
        assert f"created hospital {code}" in first.stdout
        again = server.cli(
            "hospitals", "create", code, "--name", "Renamed", "--ae", ae, "--ae", ae + "2"
        )
        assert f"updated hospital {code}" in again.stdout
        assert f"{ae}, {ae}2" in again.stdout

        user = f"tech-{code.lower()}"
        out = server.cli(
            "users",
            "create",
            user,
            "--role",
            "tech",
            "--hospital",
            code,
            "--password-stdin",
            input="first-password\n",
        )
        assert "created user" in out.stdout
        out = server.cli(
            "users",
            "create",
            user,
            "--role",
            "tech",
            "--hospital",
            code,
            "--password-stdin",
            input="second-password\n",
        )
        assert "updated user" in out.stdout
        api = login(server, user, "second-password")
        hospital = api.get("/api/hospitals").json()[0]
        assert hospital["code"] == code
        assert hospital["name"] == "Renamed"
        assert sorted(a["ae_title"] for a in hospital["ae_titles"]) == [ae, ae + "2"]

    def test_mistakes_are_refused_with_a_reason(self, server: Server) -> None:
        bad_ae = server.cli(
            "hospitals",
            "create",
            "BADAE",
            "--name",
            "x",
            "--ae",
            "WAY_TOO_LONG_AE_TITLE",
            check=False,
        )
        assert bad_ae.returncode == 2
        assert "ae_title" in bad_ae.stderr
        no_hospital = server.cli(
            "users",
            "create",
            "t-x",
            "--role",
            "tech",
            "--hospital",
            "NOPE",
            "--password-stdin",
            input="long-enough-pw\n",
            check=False,
        )
        assert no_hospital.returncode == 2
        assert "No hospital with code 'NOPE'" in no_hospital.stderr
        short = server.cli(
            "users",
            "create",
            "t-y",
            "--role",
            "admin",
            "--password-stdin",
            input="short\n",
            check=False,
        )
        assert short.returncode == 2
        assert "password" in short.stderr


class TestServeNeedsASchema:
    def test_serve_on_an_empty_database_says_to_migrate(self, tmp_path: Path) -> None:
        env = server_env(tmp_path, None)
        env.pop("RADRELAY_DATABASE_URL", None)
        env.pop("RADRELAY_REDIS_URL", None)
        result = subprocess.run(
            [RADRELAY, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2
        assert "radrelay migrate" in result.stderr


class TestRules:
    def test_check_passes_on_the_shipped_rules(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [RADRELAY, "rules", "check"],
            env=server_env(tmp_path, None),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "golden cases pass" in result.stdout

    def test_check_and_serve_name_what_to_fix(self, tmp_path: Path) -> None:
        rules = tmp_path / "rules"
        shutil.copytree(ROOT / "worklist_rules", rules)
        sla = rules / "sla.yaml"
        sla.write_text(sla.read_text().replace("mode: active", "mode: sometimes", 1))
        env = server_env(tmp_path, None)
        checked = subprocess.run(
            [RADRELAY, "rules", "check", str(rules)], env=env, capture_output=True, text=True
        )
        assert checked.returncode == 1
        assert "sla.yaml: mode" in checked.stderr
        subprocess.run([RADRELAY, "migrate"], env=env, check=True, capture_output=True)
        served = subprocess.run(
            [RADRELAY, "serve", "--port", "0"],
            env={**env, "RADRELAY_RULES_DIR": str(rules)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert served.returncode == 1
        assert "sla.yaml: mode" in served.stderr


class TestSynth:
    def test_writes_readable_studies_with_chinese_names(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [
                RADRELAY,
                "synth",
                str(tmp_path),
                "--modality",
                "CT",
                "--slices",
                "3",
                "--size",
                "64",
                "--charset",
                "GB18030",
                "--seed",
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        files = sorted(tmp_path.rglob("*.dcm"))
        assert len(files) == 3
        ds = pydicom.dcmread(files[0])
        assert ds.SpecificCharacterSet == "GB18030"
        assert ds.Rows == 64 and ds.pixel_array.shape == (64, 64)
        assert len({pydicom.dcmread(f).SOPInstanceUID for f in files}) == 3
        assert "=" in str(ds.PatientName) or ds.PatientName.family_name


class TestHealth:
    def test_health_reports_each_dependency(self, server: Server) -> None:
        r = httpx.get(f"{server.url}/api/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok"
        assert body["checks"] == {"database": "ok", "storage": "ok", "queue": "ok"}
        assert body["mode"] == ("scale-out" if "RADRELAY_REDIS_URL" in server.env else "embedded")
        assert httpx.get(f"{server.url}/api/health/live").json() == {"status": "ok"}

    def test_openapi_docs_are_served(self, server: Server) -> None:
        spec = httpx.get(f"{server.url}/openapi.json").json()
        for path in (
            "/api/uploads",
            "/dicomweb/studies",
            "/api/cases/{case_id}",
            "/api/auth/token",
        ):
            assert path in spec["paths"]
        assert httpx.get(f"{server.url}/docs").status_code == 200
