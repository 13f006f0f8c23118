"""Scale-out: two API processes, two DICOM gateways and two arq workers on one PostgreSQL and
one Redis (tests/cluster.py), all busy at once: hospitals send by C-STORE to both gateways and by
STOW-RS to both APIs (one study split across two processes, with some instances sent twice),
workers route, readers claim through both APIs, one signs a report. Then the invariants that
make the processes one system: every acknowledged instance is indexed and stored once, every
case was routed once, no case has two holders, and live events crossed the processes to the
users who may see them and to nobody else."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pydicom
import pytest
import yaml
from pydicom.dataset import Dataset

from cluster import (
    SUCCESS,
    Cluster,
    Feed,
    Proc,
    cluster,
    cstore,
    needs_scaleout,
    stored_sops,
    stow,
)
from conftest import REDIS_URL, ROOT, Api, Hospital, World, login, wait_until
from helpers import study
from radrelay.kit.events import EventBus, channel_for
from test_reports import complete, start
from test_worklist import Reader, reader

# Pooled by the shipped rules (worklist_rules/policy.yaml: HPZ's routine work is offered to
# three readers); the database is new, so the code is free.
POOL_HOSPITAL = "HPZ"


@dataclass
class Sent:
    """What the senders were told was stored, per hospital."""

    acknowledged: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    studies: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def study(self, hospital: Hospital, slices: int) -> list[Dataset]:
        datasets = study("CT", slices=slices, size=32, hospital=hospital.code)
        self.studies[hospital.id].add(datasets[0].StudyInstanceUID)
        return datasets


@dataclass
class Topology:
    c: Cluster
    apis: list[Proc]
    gateways: list[Proc]
    workers: list[Proc]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with cluster(tmp_path_factory.mktemp("scaleout")) as c:
        apis = [c.api(f"api{n}", start=False) for n in (1, 2)]
        gateways = [c.gateway(f"gateway{n}", start=False) for n in (1, 2)]
        workers = [c.worker(f"worker{n}", start=False) for n in (1, 2)]
        for proc in (*apis, *gateways, *workers):
            proc.start(wait=False)
        for proc in (*apis, *gateways, *workers):
            proc.wait_ready()
        yield Topology(c, apis, gateways, workers)


def on(proc: Proc, api: Api) -> Api:
    """The same signed-in user talking to another API process (the token is good on any)."""
    return Api(proc.endpoint, api.token, api.username)  # type: ignore[arg-type]


def pool_hospital(world: World) -> Hospital:
    tag = uuid.uuid4().hex[:8].upper()
    r = world.admin.post(
        "/api/hospitals",
        json={
            "code": POOL_HOSPITAL,
            "name": "河浦镇卫生院 Hepu Township Health Center",
            "ae_titles": [{"ae_title": f"AE{tag}", "source_addresses": []}],
        },
    )
    assert r.status_code == 201, r.text
    username, password = f"tech-{tag.lower()}", uuid.uuid4().hex
    world.user(username, "tech", password, hospital_code=POOL_HOSPITAL)
    return Hospital(
        r.json()["id"], POOL_HOSPITAL, f"AE{tag}", login(world.server, username, password), password
    )


def run_all(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs at the same time; their results in order (the first failure is raised)."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures: list[Future[Any]] = [pool.submit(job) for job in jobs]
        return [f.result(timeout=120) for f in futures]


@needs_scaleout
class TestManyProcesses:
    def test_ingest_routing_claims_and_signing_at_once(self, topology: Topology) -> None:
        c, (api1, api2), (gw1, gw2) = topology.c, topology.apis, topology.gateways
        world = c.world()
        by_cstore = [world.hospital(), world.hospital()]
        by_stow = world.hospital()
        pool = pool_hospital(world)
        bystander = world.hospital()
        senders = [*by_cstore, by_stow, pool]
        readers = [reader(world, senders, {"abdominal": 2}) for _ in range(4)]
        coordinator = world.signed_in("coordinator")

        # Half the users listen on each API process; every routing is done by a worker.
        feeds = {
            "coordinator": Feed(api1, coordinator.token),
            "bystander": Feed(api2, bystander.tech.token),
            **{
                f"tech{h.id}": Feed(api2 if i % 2 else api1, h.tech.token)
                for i, h in enumerate(senders)
            },
            **{
                f"reader{r.id}": Feed(api2 if i % 2 else api1, r.api.token)
                for i, r in enumerate(readers)
            },
        }
        sent = Sent()

        def by_gateways(h: Hospital, slices: int = 8) -> list[Callable[[], Any]]:
            """One study over two associations to the two gateways at once; the middle
            instances go to both."""
            datasets = sent.study(h, slices)
            half = slices // 2
            parts = [(gw1, datasets[: half + 1]), (gw2, datasets[half - 1 :])]

            def send(gw: Proc, part: list[Dataset]) -> None:
                statuses = cstore(gw.dicom_port, h.ae_title, part)  # type: ignore[arg-type]
                assert statuses == [SUCCESS] * len(part), statuses
                sent.acknowledged[h.id] |= {ds.SOPInstanceUID for ds in part}

            return [lambda gw=gw, part=part: send(gw, part) for gw, part in parts]

        def by_apis(h: Hospital, slices: int = 8) -> list[Callable[[], Any]]:
            """One study in two STOW-RS requests to the two API processes at once."""
            datasets = sent.study(h, slices)
            half = slices // 2
            parts = [(api1, datasets[: half + 1]), (api2, datasets[half - 1 :])]

            def send(api: Proc, part: list[Dataset]) -> None:
                r = stow(api, h.tech.token, part)
                assert r.status_code == 200, r.text
                sent.acknowledged[h.id] |= stored_sops(r)

            return [lambda api=api, part=part: send(api, part) for api, part in parts]

        # Wave one: every hospital sends through both gateways or both APIs at once.
        run_all(
            [
                *by_gateways(by_cstore[0]),
                *by_gateways(by_cstore[1]),
                *by_gateways(by_cstore[0], 6),
                *by_apis(by_stow),
                *by_apis(pool),
                *by_apis(pool, 6),
            ]
        )
        first = routed(coordinator, sent, expected=6)
        pushed = [case for case in first.values() if case["status"] == "assigned"]
        offered = [case for case in first.values() if case["status"] == "offered"]
        assert len(pushed) == 4 and len(offered) == 2, {k: v["status"] for k, v in first.items()}
        by_id = {r.id: r for r in readers}

        def claim_twice(case: dict[str, Any]) -> list[int]:
            """The holder opens the case from two tabs, one on each API process."""
            holder = by_id[case["reader_id"]]
            url = f"/api/cases/{case['id']}/claim"
            return run_all(
                [lambda api=api: on(api, holder.api).post(url).status_code for api in (api1, api2)]
            )

        def race(case: dict[str, Any]) -> dict[int, int]:
            """Every reader the case is offered to claims it at once, through either API."""
            candidates = [by_id[i] for i in offers_of(c, case["id"])]
            assert len(candidates) == 3, candidates
            codes = run_all(
                [
                    lambda r=r, api=api: (
                        on(api, r.api).post(f"/api/cases/{case['id']}/claim").status_code
                    )
                    for r, api in zip(candidates, [api1, api2, api1], strict=True)
                ]
            )
            return {r.id: code for r, code in zip(candidates, codes, strict=True)}

        signed_case = pushed[0]
        signer = by_id[signed_case["reader_id"]]

        def sign_report() -> dict[str, Any]:
            """Claim on one API, write on the other, sign on the first."""
            here = Reader(signer.id, on(api1, signer.api), signer.password)
            there = Reader(signer.id, on(api2, signer.api), signer.password)
            assert here.api.post(f"/api/cases/{signed_case['id']}/claim").status_code == 200
            report = start(there, signed_case["id"])
            r = here.api.put(f"/api/reports/{report['id']}/draft", json=complete(report))
            assert r.status_code == 200 and r.json()["missing"] == [], r.text
            r = there.api.post(f"/api/reports/{report['id']}/sign", json=signer.credentials())
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        # Wave two, all at once: more studies by both paths, claims and races on wave one's
        # cases through both APIs, and a report signed.
        ingest = [*by_gateways(by_cstore[1]), *by_apis(by_stow, 10), *by_apis(pool, 4)]
        claiming = [lambda case=case: claim_twice(case) for case in pushed[1:]]
        racing = [lambda case=case: race(case) for case in offered]
        results = run_all([*ingest, *claiming, *racing, sign_report])
        claims = results[len(ingest) : len(ingest) + len(claiming)]
        races = results[len(ingest) + len(claiming) : -1]
        signed = results[-1]
        everything = routed(coordinator, sent, expected=9)
        assert all(codes == [200, 200] for codes in claims), claims
        for outcome in races:
            assert Counter(outcome.values())[200] == 1, outcome
            assert set(outcome.values()) <= {200, 404, 409}, outcome
        assert signed["status"] == "final", signed

        # Every acknowledged instance is indexed once and stored once, and nothing else is.
        for h in senders:
            rows = c.sql(
                "SELECT i.sop_instance_uid, i.storage_key, i.sha256 FROM instances i "
                "JOIN studies s ON s.id = i.study_pk WHERE s.hospital_id = %s",
                h.id,
            )
            indexed = Counter(sop for sop, _, _ in rows)
            assert set(indexed) == sent.acknowledged[h.id], h.code
            assert set(indexed.values()) == {1}, [sop for sop, n in indexed.items() if n > 1]
            for sop, key, sha in rows:
                path = c.storage_root / key
                assert path.name.startswith(f"{sop}.{sha[:16]}")
                assert [p.name for p in path.parent.glob(f"{sop}.*")] == [path.name]
                assert pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID == sop
            counted = c.sql(
                "SELECT study_instance_uid, number_of_instances FROM studies "
                "WHERE hospital_id = %s",
                h.id,
            )
            assert {uid for uid, _ in counted} == sent.studies[h.id]
            assert sum(n for _, n in counted) == len(rows)

        # Every case was routed once when it became ready, by one of the workers.
        cases = {case_id for case_id, _ in c.sql("SELECT id, hospital_id FROM cases")}
        assert cases == set(everything)
        ready = Counter(
            case_id
            for (case_id,) in c.sql("SELECT case_id FROM routing_decisions WHERE trigger = 'ready'")
        )
        assert ready == Counter(cases), ready

        # No case is held by two readers, in the database or in the readers' worklists.
        holders = c.sql(
            "SELECT case_id, count(*) FROM case_assignments "
            "WHERE active AND kind = 'assigned' GROUP BY case_id HAVING count(*) > 1"
        )
        assert holders == []
        held: Counter[int] = Counter()
        for i, r in enumerate(readers):
            page = on(topology.apis[i % 2], r.api).get("/api/worklist").json()
            held.update(
                item["case"]["id"]
                for item in page["items"]
                if item["hold"] in ("assigned", "reading")
            )
        assert max(held.values()) == 1, held

        # Live events crossed the processes to those who may see them, and to nobody else.
        for feed in feeds.values():
            feed.close()
        decisions = c.sql(
            "SELECT case_id, assignee_id, decision FROM routing_decisions WHERE trigger = 'ready'"
        )
        for case_id, assignee, decision in decisions:
            concerned = {assignee} if assignee else set(decision.get("offered", []))
            for reader_id in concerned - {None}:
                assert "case.routed" in feeds[f"reader{reader_id}"].of(case_id), (
                    case_id,
                    reader_id,
                )
            for r in readers:
                if r.id not in concerned and not was_offered(c, case_id, r.id):
                    assert feeds[f"reader{r.id}"].of(case_id) == [], (case_id, r.id)
            assert "case.routed" in feeds["coordinator"].of(case_id)
        for h in senders:
            mine = {
                case_id for (case_id,) in c.sql("SELECT id FROM cases WHERE hospital_id = %s", h.id)
            }
            for case_id in cases:
                seen = feeds[f"tech{h.id}"].of(case_id)
                if case_id in mine:
                    assert {"case.received", "case.ready", "case.routed"} <= set(seen), seen
                else:
                    assert seen == [], (h.code, case_id, seen)
        assert not [e for e in feeds["bystander"].events if e.get("case_id") in cases]
        assert {e["case_id"] for e in feeds["coordinator"].events if "case_id" in e} <= cases
        assert "report.signed" in feeds[f"tech{signed_case['hospital_id']}"].of(signed_case["id"])
        # A reader listening on API 2 learnt of a routing that a worker did for a study one
        # hospital sent to API 1 (and API 2), and the other way round.
        listening = {r.id: topology.apis[i % 2] for i, r in enumerate(readers)}
        assert {listening[a].name for _, a, _ in decisions if a} == {"api1", "api2"}

    def test_another_deployments_events_stay_there(self, topology: Topology) -> None:
        """Two deployments (or test runs) on one Redis: hospital and case ids repeat across
        their databases, so an event heard from the other would reach the wrong users."""
        world = topology.c.world()
        h = world.hospital()
        feed = Feed(topology.apis[1], h.tech.token)
        ours = topology.c.env["RADRELAY_QUEUE_NAME"]

        async def publish() -> None:
            theirs = EventBus(REDIS_URL, channel_for(f"{ours}-another"))
            here = EventBus(REDIS_URL, channel_for(ours))
            for bus in (theirs, here):
                await bus.start(listen=False)
            await theirs.send([{"type": "case.received", "case_id": 1, "hospital_id": h.id}])
            # Published after the other deployment's event, so it arrives after it would have.
            await here.send([{"type": "marker", "hospital_id": h.id}])
            for bus in (theirs, here):
                await bus.close()

        asyncio.run(publish())
        wait_until(lambda: feed.events, what="our own event")
        feed.close()
        assert [e["type"] for e in feed.events] == ["marker"]


def routed(coordinator: Api, sent: Sent, *, expected: int) -> dict[int, dict[str, Any]]:
    """Wait until every study sent has its case, routed; the cases by id."""
    uids = set().union(*sent.studies.values())
    assert len(uids) == expected

    def check() -> dict[int, dict[str, Any]] | None:
        r = coordinator.get("/api/cases", params={"limit": 500})
        assert r.status_code == 200, r.text
        found = {
            case["id"]: case for case in r.json()["items"] if case["study_instance_uid"] in uids
        }
        if len(found) == expected and all(case["routed_at"] for case in found.values()):
            return found
        return None

    return wait_until(check, timeout=45, interval=0.3, what=f"{expected} cases routed")  # type: ignore[no-any-return]


def offers_of(c: Cluster, case_id: int) -> list[int]:
    return [
        user_id
        for (user_id,) in c.sql(
            "SELECT user_id FROM case_assignments WHERE case_id = %s AND kind = 'offered' "
            "ORDER BY user_id",
            case_id,
        )
    ]


def was_offered(c: Cluster, case_id: int, user_id: int) -> bool:
    return user_id in offers_of(c, case_id) or bool(
        c.sql(
            "SELECT 1 FROM case_assignments WHERE case_id = %s AND user_id = %s", case_id, user_id
        )
    )


def test_compose_runs_the_same_topology() -> None:
    """compose.yaml deploys what this file tests: two API processes without the DICOM port, two
    workers and two gateways, on one PostgreSQL and one Redis."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    commands = {
        "api": ["radrelay", "serve", "--no-dicom"],
        "worker": ["radrelay", "worker"],
        "gateway": ["radrelay", "gateway"],
    }
    for name, command in commands.items():
        assert services[name]["deploy"]["replicas"] >= 2, name
        assert [part for part in services[name]["command"] if part in command] == command, name
    assert {"postgres", "redis"} <= set(services)
