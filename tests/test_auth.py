"""Signing in, refreshing, throttling and role checks, through the HTTP API."""

from __future__ import annotations

import uuid

import httpx

from conftest import ADMIN_PASSWORD, Server, World, login, wait_until


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

        # Past the reuse grace (1 s in tests) the first token again is a stolen copy: refused,
        # and the newer token of the same chain dies with it.
        def reuse_refused() -> bool:
            again = httpx.post(
                f"{server.url}/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
            )
            return again.status_code == 401

        wait_until(reuse_refused, timeout=10, interval=0.5, what="reuse after the grace")
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


class TestSessions:
    def test_sign_out_ends_the_refresh_chain(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        tokens = token(server, hospital.tech.username, hospital.tech_password).json()
        out = httpx.post(
            f"{server.url}/api/auth/logout", json={"refresh_token": tokens["refresh_token"]}
        )
        assert out.status_code == 204
        again = httpx.post(
            f"{server.url}/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert again.status_code == 401

    def test_a_retried_refresh_within_the_grace_is_honoured(
        self, server: Server, world: World
    ) -> None:
        """A refresh whose answer was lost is retried with the same token a moment later."""
        hospital = world.hospital()
        first = token(server, hospital.tech.username, hospital.tech_password).json()[
            "refresh_token"
        ]
        r1 = httpx.post(f"{server.url}/api/auth/refresh", json={"refresh_token": first})
        r2 = httpx.post(f"{server.url}/api/auth/refresh", json={"refresh_token": first})
        assert r1.status_code == 200 and r2.status_code == 200
        assert r1.json()["refresh_token"] != r2.json()["refresh_token"]

    def test_me_names_the_hospital_and_the_limits(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        me = hospital.tech.get("/api/me").json()
        assert me["hospital_code"] == hospital.code
        assert me["limits"]["max_upload_bytes"] == 24 * 1024 * 1024
        assert me["limits"]["max_instance_bytes"] == 8 * 1024 * 1024
