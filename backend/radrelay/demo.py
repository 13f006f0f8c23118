"""``radrelay demo``: demo hospitals, users and studies for a first look. Idempotent.

The logins are printed and are for a demo machine only. Studies are synthetic (``synth``) and go
through the same ingest path as real ones, so the demo shows real cases.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from radrelay import synth, worker
from radrelay.auth.schemas import Role, UserCreate
from radrelay.auth.service import auth_service
from radrelay.cases.schemas import ClinicalInfo, Priority, Source, Subspecialty
from radrelay.cases.service import cases
from radrelay.config import Settings
from radrelay.experts.schemas import (
    CredentialIn,
    Employment,
    ExpertState,
    ExpertUpdate,
    Qualification,
    ShiftIn,
)
from radrelay.experts.service import experts
from radrelay.hospitals.schemas import AETitleIn, HospitalCreate
from radrelay.hospitals.service import hospitals
from radrelay.ingest.prepare import Received
from radrelay.ingest.service import Origin, ingest
from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime

HOSPITALS = [
    ("QSX", "青山县人民医院 Qingshan County People's Hospital", "QSX_CT"),
    ("HPZ", "河畔镇卫生院 Hepan Township Health Center", "HPZ_DR"),
]
USERS = [
    ("admin", Role.admin, None, "Admin 管理员", "admin-demo-pass"),
    ("coord", Role.coordinator, None, "Zhou Coordinator 周调度", "coord-demo-pass"),
    ("dr.li", Role.radiologist, None, "Dr Li Ming 李明", "reader-demo-pass"),
    ("dr.wang", Role.radiologist, None, "Dr Wang Fang 王芳", "reader-demo-pass"),
    ("tech.qsx", Role.tech, "QSX", "Tech Chen 陈技师", "tech-demo-pass"),
    ("tech.hpz", Role.tech, "HPZ", "Tech Zhao 赵技师", "tech-demo-pass"),
]
STUDIES = [
    (
        "CT",
        40,
        Priority.urgent,
        "腹痛三天，排除阑尾炎 Abdominal pain for 3 days, rule out appendicitis",
    ),
    ("CR", 1, Priority.routine, "咳嗽两周 Cough for two weeks"),
    ("MR", 20, Priority.stat, "突发头痛 Sudden severe headache"),
]


def _expert_profiles() -> dict[str, ExpertUpdate]:
    """dr.li reads around the clock, so the demo routes at any hour; dr.wang is part-time."""
    every_day = range(7)
    in_a_year = utcnow() + timedelta(days=365)
    return {
        "dr.li": ExpertUpdate(
            employment=Employment.full_time,
            qualification=Qualification.final,
            subspecialties={Subspecialty.neuro: 3, Subspecialty.chest: 2, Subspecialty.general: 2},
            credentials=[CredentialIn(hospital_code=code) for code, _, _ in HOSPITALS],
            shifts=[ShiftIn(weekday=d, start="00:00", end="24:00") for d in every_day],
        ),
        "dr.wang": ExpertUpdate(
            employment=Employment.part_time,
            qualification=Qualification.preliminary,
            subspecialties={
                Subspecialty.abdominal: 2,
                Subspecialty.msk: 2,
                Subspecialty.general: 1,
            },
            credentials=[
                CredentialIn(hospital_code=code, expires_at=in_a_year) for code, _, _ in HOSPITALS
            ],
            cap_open_cases=5,
            shifts=[ShiftIn(weekday=d, start="08:00", end="23:00") for d in every_day],
        ),
    }


async def seed(settings: Settings, *, studies_per_hospital: int = 2) -> list[str]:
    runtime = Runtime(settings)
    lines = []
    try:
        await runtime.start(run_jobs_here=True, functions=worker.FUNCTIONS)
        async with runtime.uow() as session:
            for code, name, ae in HOSPITALS:
                await hospitals.create_or_update(
                    session,
                    HospitalCreate(code=code, name=name, ae_titles=[AETitleIn(ae_title=ae)]),
                )
            user_ids = {}
            for username, role, hospital_code, display, password in USERS:
                user, _ = await auth_service.create_user(
                    session,
                    UserCreate(
                        username=username,
                        role=role,
                        hospital_code=hospital_code,
                        display_name=display,
                        password=password,
                    ),
                )
                user_ids[username] = user.id
            for username, profile in _expert_profiles().items():
                await experts.put_profile(session, None, user_ids[username], profile)
                await experts.set_state(session, None, user_ids[username], ExpertState.online)
        lines.append("Demo logins (demo machine only):")
        lines += [f"  {u:<10} {p:<18} {r.value}" for u, r, _, _, p in USERS]
        lines.append(
            "Experts online: dr.li (around the clock), dr.wang (08:00-23:00 Asia/Shanghai)"
        )
        lines.append(
            "DICOM: AE title RADRELAY; calling AE titles " + ", ".join(h[2] for h in HOSPITALS)
        )
        for index, (code, _, _) in enumerate(HOSPITALS):
            async with runtime.uow() as session:
                hospital = await hospitals.get_by_code(session, code)
            for n in range(studies_per_hospital):
                modality, slices, priority, question = STUDIES[(index + n) % len(STUDIES)]
                stored = await _ingest_study(
                    runtime, hospital.id, code, modality, slices, n, priority, question
                )
                lines.append(f"  {code}: {modality} study, {stored} new instances")
    finally:
        await runtime.close()
    return lines


async def _ingest_study(
    runtime: Runtime,
    hospital_id: int,
    code: str,
    modality: str,
    slices: int,
    n: int,
    priority: Priority,
    question: str,
) -> int:
    size = {"CT": 256, "MR": 256, "CR": 1024}[modality]
    with tempfile.TemporaryDirectory(dir=runtime.settings.tmp_dir) as tmp:
        received = []
        for i, ds in enumerate(
            synth.study(modality, seed=n + 1, slices=slices, size=size, hospital=code)
        ):
            path = Path(tmp) / f"{i}.dcm"
            ds.save_as(path, enforce_file_format=True)
            received.append(Received(path.name, path))
        prepared = await ingest.prepare_all(runtime, hospital_id, received)
        info = ClinicalInfo(priority=priority, clinical_question=question)
        async with runtime.uow() as session:
            outcomes = await ingest.store(
                runtime, session, Origin(Source.upload, hospital_id), prepared, info=info
            )
            case_ids = sorted({o.case_id for o in outcomes if o.case_id is not None})
            await cases.mark_ready(session, case_ids, reason="upload_complete")
    return sum(1 for o in outcomes if o.outcome == "stored")
