"""Admins edit, deactivate and activate users (``PATCH /api/users/{id}``), through the HTTP API
of a running server; the last-admin rule, which no single request can reach, through the service
on a database of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from conftest import (
    PG_URL,
    RADRELAY,
    Api,
    Server,
    World,
    fresh_postgres_database,
    login,
    server_env,
    wait_until,
)
from radrelay.auth.repository import users
from radrelay.auth.schemas import Principal, Role, UserUpdate
from radrelay.auth.service import DEACTIVATED, auth_service
from radrelay.config import Settings
from radrelay.errors import Conflict
from radrelay.kit.runtime import Runtime
from test_worklist import case, reader, routed, send


def new_user(world: World, role: str = "coordinator") -> tuple[Api, str]:
    """A signed-in user of ``role`` (not a technician) and their password."""
    username, password = f"{role}-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    world.user(username, role, password)
    return login(world.server, username, password), password


def user_id(api: Api) -> int:
    return int(api.get("/api/me").json()["id"])


def patch(world: World, uid: int, **body: Any) -> httpx.Response:
    return world.admin.patch(f"/api/users/{uid}", json=body)


def sign_in(server: Server, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/auth/token", data={"username": username, "password": password}
    )


def refresh(server: Server, token: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/auth/refresh", json={"refresh_token": token})


def audited(world: World, uid: int, action: str) -> list[dict[str, Any]]:
    r = world.admin.get("/api/audit", params={"action": action, "limit": 1000})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["object_id"] == str(uid)]


class TestEdit:
    def test_admin_renames_a_user(self, world: World) -> None:
        api, _ = new_user(world)
        uid = user_id(api)
        r = patch(world, uid, display_name="  Dr Li Wei 李伟 ")
        assert r.status_code == 200, r.text
        assert r.json()["display_name"] == "Dr Li Wei 李伟"
        assert r.json()["username"] == api.username and r.json()["active"] is True
        listed = {u["id"]: u for u in world.admin.get("/api/users").json()}
        assert listed[uid]["display_name"] == "Dr Li Wei 李伟"
        # The user's session goes on: a new name changes nothing of what the token says.
        assert api.get("/api/me").json()["display_name"] == "Dr Li Wei 李伟"
        (entry,) = audited(world, uid, "user.update")
        assert entry["detail"] == {"fields": ["display_name"]}

    def test_password_reset_ends_the_sessions(self, server: Server, world: World) -> None:
        api, old = new_user(world)
        uid = user_id(api)
        tokens = sign_in(server, api.username, old).json()
        new = secrets.token_urlsafe(12)
        assert patch(world, uid, password=new).status_code == 200
        assert sign_in(server, api.username, old).status_code == 401
        assert sign_in(server, api.username, new).status_code == 200
        assert refresh(server, tokens["refresh_token"]).status_code == 401
        # An ended session is not taken for a stolen token.
        assert audited(world, uid, "auth.refresh_reused") == []
        (entry,) = audited(world, uid, "user.update")
        assert entry["detail"] == {"fields": ["password"]}
        assert old not in json.dumps(entry) and new not in json.dumps(entry)

    def test_a_technician_moves_to_another_hospital(self, server: Server, world: World) -> None:
        old, new = world.hospital(), world.hospital()
        tokens = sign_in(server, old.tech.username, old.tech_password).json()
        uid = user_id(old.tech)
        r = patch(world, uid, hospital_code=new.code)
        assert r.status_code == 200, r.text
        assert r.json()["hospital_id"] == new.id
        # The token still names the old hospital: refused, and a refresh brings the new one.
        stale = old.tech.get("/api/hospitals")
        assert stale.status_code == 401
        assert "sign in again" in stale.json()["message"]
        renewed = refresh(server, tokens["refresh_token"])
        assert renewed.status_code == 200 and renewed.json()["hospital_id"] == new.id
        me = Api(server, renewed.json()["access_token"]).get("/api/me").json()
        assert me["hospital_code"] == new.code
        (entry,) = audited(world, uid, "user.update")
        assert entry["detail"] == {
            "fields": ["hospital"],
            "hospital_id": {"from": old.id, "to": new.id},
        }

    def test_hospital_rules_say_what_to_fix(self, world: World) -> None:
        h = world.hospital()
        uid = user_id(h.tech)
        coordinator = user_id(new_user(world)[0])
        cases = [
            (coordinator, {"hospital_code": h.code}, "Only technicians belong to one hospital"),
            (uid, {"hospital_code": None}, "A technician must belong to a hospital"),
            (uid, {"hospital_code": "NO-SUCH"}, "No hospital with code 'NO-SUCH'"),
        ]
        for target, body, message in cases:
            r = patch(world, target, **body)
            assert r.status_code == 400, r.text
            assert r.json()["message"].startswith(message)
        # A coordinator without a hospital may be sent a null one: nothing changes.
        assert patch(world, coordinator, hospital_code=None).status_code == 200


class TestDeactivate:
    def test_deactivated_user_is_refused_everywhere_until_activated(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        uid = user_id(h.tech)
        tokens = sign_in(server, h.tech.username, h.tech_password).json()
        r = patch(world, uid, active=False)
        assert r.status_code == 200, r.text
        assert r.json()["active"] is False

        refused = sign_in(server, h.tech.username, h.tech_password)
        assert refused.status_code == 401
        assert refused.json()["message"] == DEACTIVATED
        # A wrong password does not learn that the account exists.
        wrong = sign_in(server, h.tech.username, "not-the-password")
        assert wrong.json()["message"] == "Wrong username or password."
        # Their sessions are gone: an open tab's refresh sends them to sign in, which says why.
        again = refresh(server, tokens["refresh_token"])
        assert again.status_code == 401
        assert again.json()["message"].startswith("The refresh token is unknown")
        # The access token has minutes left, but the account is read again first.
        cases = h.tech.get("/api/cases")
        assert cases.status_code == 401 and cases.json()["message"] == DEACTIVATED
        assert [e["action"] for e in audited(world, uid, "user.deactivate")] == ["user.deactivate"]
        assert audited(world, uid, "user.update") == []

        assert patch(world, uid, active=True).status_code == 200
        assert sign_in(server, h.tech.username, h.tech_password).status_code == 200
        assert len(audited(world, uid, "user.activate")) == 1

    async def test_the_live_connection_closes(self, server: Server, world: World) -> None:
        h = world.hospital()
        uid = await asyncio.to_thread(user_id, h.tech)
        url = f"{server.url.replace('http', 'ws')}/ws?token={h.tech.token}"
        async with websockets.connect(url) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello == {"type": "hello", "user_id": uid}
            r = await asyncio.to_thread(patch, world, uid, active=False)
            assert r.status_code == 200, r.text
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:  # pings may come first
                    await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert "deactivated" in closed.value.rcvd.reason
        # Nor does it open again with the same token.
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    def test_admins_cannot_deactivate_themselves(self, server: Server, world: World) -> None:
        other, _ = new_user(world, "admin")
        uid = user_id(other)
        r = other.patch(f"/api/users/{uid}", json={"active": False})
        assert r.status_code == 409
        assert r.json()["message"].startswith("You cannot deactivate your own account")
        # Anything else of their own they may change.
        r = other.patch(f"/api/users/{uid}", json={"display_name": "Second admin"})
        assert r.status_code == 200, r.text
        # And another admin may deactivate them.
        assert patch(world, uid, active=False).status_code == 200
        assert other.get("/api/users").status_code == 401

    def test_a_deactivated_radiologists_unstarted_cases_go_back_to_routing(
        self, world: World
    ) -> None:
        h = world.hospital()
        leaving = reader(world, [h], {"msk": 3})
        started = send(h, priority="urgent", requested_subspecialty="msk")
        waiting = send(h, priority="urgent", requested_subspecialty="msk")
        routed(h.tech, started, "assigned")
        routed(h.tech, waiting, "assigned")
        assert leaving.api.post(f"/api/cases/{started}/claim").status_code == 200
        staying = reader(world, [h], {"msk": 1})
        assert patch(world, leaving.id, active=False).status_code == 200
        c = wait_until(
            lambda: (c := case(h.tech, waiting))["reader_id"] == staying.id and c,
            what="the unstarted case to move",
        )
        assert c["status"] == "assigned"
        # The one being read stays with its reader until the lease runs out.
        assert case(h.tech, started)["reader_id"] == leaving.id
        profile = world.admin.get(f"/api/experts/{leaving.id}").json()
        assert profile["state"] == "offline"


class TestRules:
    def test_only_admins_edit_users(self, world: World) -> None:
        target = user_id(new_user(world)[0])
        for role in ("coordinator", "radiologist"):
            api, _ = new_user(world, role)
            r = api.patch(f"/api/users/{target}", json={"display_name": "x"})
            assert r.status_code == 403
        h = world.hospital()
        assert h.tech.patch(f"/api/users/{target}", json={"active": False}).status_code == 403

    def test_unknown_user_is_404(self, world: World) -> None:
        r = patch(world, 2_000_000_000, display_name="Nobody")
        assert r.status_code == 404
        assert r.json()["message"] == "No user 2000000000."

    def test_malformed_payloads_are_422_with_the_field(self, world: World) -> None:
        uid = user_id(new_user(world)[0])
        cases = [
            ({"password": "short"}, "password"),
            ({"display_name": "   "}, "display_name"),
            ({"display_name": "x" * 201}, "display_name"),
            ({"active": "perhaps"}, "active"),
            ({"role": "admin"}, "role"),  # the role is not changed here
        ]
        for body, field in cases:
            r = patch(world, uid, **body)
            assert r.status_code == 422, (body, r.text)
            assert [p["field"] for p in r.json()["detail"]] == [field]
        # Nothing was changed by any of them.
        listed = {u["id"]: u for u in world.admin.get("/api/users").json()}
        assert listed[uid]["active"] is True


# --- the last active admin ------------------------------------------------------------------


@pytest.fixture
def lone_admin_db(tmp_path: Path) -> Iterator[Settings]:
    """A migrated database of its own whose one user is the admin."""
    databases = fresh_postgres_database() if PG_URL else contextlib.nullcontext(None)
    with databases as url:
        env = server_env(tmp_path, url)
        for args, stdin in (
            (["migrate"], None),
            (["users", "create", "admin", "--role", "admin", "--password-stdin"], "pw-12345678\n"),
        ):
            subprocess.run(
                [RADRELAY, *args], env=env, input=stdin, text=True, check=True, timeout=120
            )
        yield Settings(
            data_dir=tmp_path,
            database_url=url or f"sqlite+aiosqlite:///{tmp_path / 'radrelay.db'}",
            secret_key="unused",
        )


class TestLastAdmin:
    def test_the_last_active_admin_cannot_be_deactivated(self, lone_admin_db: Settings) -> None:
        """Through the API the caller is an active admin and cannot deactivate themself, so
        another one always remains; only two admins deactivating each other at the same moment
        could end with none. The rule (under a row lock) is checked here directly."""

        async def attempt() -> None:
            runtime = Runtime(lone_admin_db)
            try:
                async with runtime.uow() as session:
                    (admin,) = [u.id for u in await users.all(session)]
                    actor = Principal(admin + 1, "other-admin", Role.admin, None)
                    await auth_service.update_user(session, actor, admin, UserUpdate(active=False))
            finally:
                await runtime.close()

        with pytest.raises(Conflict, match="admin is the last active administrator"):
            asyncio.run(attempt())
