"""Signing in, refreshing, throttling and role checks, through the HTTP API."""

from __future__ import annotations

import uuid

import httpx

from conftest import ADMIN_PASSWORD, Server, World, login


def token(server: Server, username: str, password: str, ip: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return httpx.post(
        f"{server.url}/api/auth/token",
        data={"username": username, "password": password},
        headers=headers,
    )


class TestSignIn:
    def test_password_flow_gives_tokens_that_open_the_api(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        me = hospital.tech.get("/api/me")
        assert me.status_code == 200
        assert me.json()["role"] == "tech"
        assert me.json()["hospital_id"] == hospital.id

    def test_wrong_password_is_401_and_audited(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        r = token(server, hospital.tech.username, "wrong-password", ip="10.1.0.1")
        assert r.status_code == 401
        assert r.json()["message"] == "Wrong username or password."
        assert "WWW-Authenticate" in r.headers

    def test_no_token_and_bad_token_are_401(self, server: Server) -> None:
        assert httpx.get(f"{server.url}/api/cases").status_code == 401
        r = httpx.get(f"{server.url}/api/cases", headers={"Authorization": "Bearer not-a-jwt"})
        assert r.status_code == 401
        assert "not valid" in r.json()["message"]


class TestThrottle:
    def test_account_is_throttled_after_repeated_failures(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        for i in range(5):
            assert (
                token(server, hospital.tech.username, "nope", ip=f"10.2.0.{i}").status_code == 401
            )
        r = token(server, hospital.tech.username, hospital.tech_password, ip="10.2.0.99")
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) > 0
        assert "this account" in r.json()["message"]

    def test_address_is_throttled_across_accounts(self, server: Server, world: World) -> None:
        ip = f"10.3.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        for _ in range(20):
            assert token(server, f"nobody-{uuid.uuid4().hex[:6]}", "x", ip=ip).status_code == 401
        hospital = world.hospital()
        r = token(server, hospital.tech.username, hospital.tech_password, ip=ip)
        assert r.status_code == 429
        assert "this address" in r.json()["message"]
        # Another address still signs in.
        assert (
            token(server, hospital.tech.username, hospital.tech_password, ip="10.4.0.1").status_code
            == 200
        )


class TestRefresh:
    def test_refresh_token_works_once_and_reuse_ends_the_chain(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        first = token(server, hospital.tech.username, hospital.tech_password).json()
        second = httpx.post(
            f"{server.url}/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert second.status_code == 200
        new = second.json()
        assert (
            httpx.get(
                f"{server.url}/api/me", headers={"Authorization": f"Bearer {new['access_token']}"}
            ).status_code
            == 200
        )
        # The first refresh token again: refused, and the newer one dies with it.
        again = httpx.post(
            f"{server.url}/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert again.status_code == 401
        chained = httpx.post(
            f"{server.url}/api/auth/refresh", json={"refresh_token": new["refresh_token"]}
        )
        assert chained.status_code == 401


class TestRoles:
    def test_only_admins_manage_hospitals_and_users(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        coordinator = world.signed_in("coordinator")
        for api in (hospital.tech, coordinator):
            assert api.post("/api/hospitals", json={"code": "XX", "name": "x"}).status_code == 403
            assert api.get("/api/users").status_code == 403

    def test_tech_sees_only_their_hospital(self, server: Server, world: World) -> None:
        mine, other = world.hospital(), world.hospital()
        listed = mine.tech.get("/api/hospitals").json()
        assert [h["code"] for h in listed] == [mine.code]
        assert mine.tech.get(f"/api/hospitals/{other.code}").status_code == 404

    def test_admin_login_from_cli_created_user(self, server: Server) -> None:
        assert login(server, "admin", ADMIN_PASSWORD).get("/api/users").status_code == 200
