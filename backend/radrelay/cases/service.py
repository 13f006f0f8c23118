"""Cases: opened by the first instance of a study, ready when the study is complete.

Readiness is one conditional update (``receiving`` -> ``ready``), so however many sweepers and
uploads race for it, one wins, and only the winner enqueues ``case_ready`` (job id
``case-ready:<id>``), the entry point of routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Integer, Table, bindparam, func, update
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.archive.service import StudyRef, archive
from radrelay.audit.service import audit
from radrelay.auth.schemas import Principal
from radrelay.cases import auth
from radrelay.cases.repository import CaseRow, repository
from radrelay.cases.schemas import (
    CaseDetail,
    CaseEventRead,
    CasePage,
    CaseRead,
    CaseStatus,
    ClinicalInfo,
    Priority,
    PriorRead,
    Source,
)
from radrelay.errors import BadRequest, NotFound
from radrelay.kit import events, jobs
from radrelay.kit.db import utcnow
from radrelay.kit.dicom import Header
from radrelay.models import Case, CaseEvent

_cases = cast(Table, Case.__table__)
_now = bindparam("now", type_=_cases.c.updated_at.type)
# Built once: it runs for every received object (see ``radrelay.archive.repository``).
_RECORD_ARRIVALS = (
    update(_cases)
    .where(_cases.c.id == bindparam("case_id"))
    .values(
        last_instance_at=_now,
        updated_at=_now,
        late_instances=_cases.c.late_instances
        + sql_case(
            (_cases.c.status != CaseStatus.receiving.value, bindparam("count", type_=Integer)),
            else_=0,
        ),
    )
    .returning(_cases.c.status, _cases.c.hospital_id)
)

# RequestedProcedurePriority (0040,1003) as modalities fill it from the worklist.
_DICOM_PRIORITY = {"STAT": Priority.stat, "HIGH": Priority.urgent}


def _info_from_header(h: Header) -> dict[str, object]:
    return {
        "priority": _DICOM_PRIORITY.get(h.requested_priority.upper(), Priority.routine).value,
        "clinical_question": h.reason_for_request,
        "clinical_history": h.patient_history,
        "requested_exam": h.requested_procedure or h.study_description,
    }


def to_read(row: CaseRow) -> CaseRead:
    c, study, patient, hospital_code, reader_name = row
    return CaseRead(
        id=c.id,
        hospital_id=c.hospital_id,
        hospital_code=hospital_code,
        status=CaseStatus(c.status),
        priority=Priority(c.priority),
        clinical_question=c.clinical_question,
        clinical_history=c.clinical_history,
        requested_exam=c.requested_exam,
        requested_subspecialty=c.requested_subspecialty,  # type: ignore[arg-type]
        source=Source(c.source),
        received_at=c.received_at,
        last_instance_at=c.last_instance_at,
        ready_at=c.ready_at,
        late_instances=c.late_instances,
        flags=list(c.flags or []),
        study_instance_uid=study.study_instance_uid,
        accession_number=study.accession_number,
        study_date=study.study_date,
        study_description=study.study_description,
        modalities=[m for m in study.modalities_in_study.split("\\") if m],
        number_of_series=study.number_of_series,
        number_of_instances=study.number_of_instances,
        patient_name=patient.patient_name,
        patient_id=patient.patient_id,
        issuer_of_patient_id=patient.issuer_of_patient_id,
        patient_birth_date=patient.birth_date,
        patient_sex=patient.sex,
        subspecialty=c.subspecialty,  # type: ignore[arg-type]
        work_units=c.work_units,
        deadline=c.deadline,
        sla_state=c.sla_state,
        reader_id=c.reader_id,
        reader_name=reader_name,
        lease_expires_at=c.lease_expires_at,
        routed_at=c.routed_at,
        assigned_at=c.assigned_at,
        opened_at=c.opened_at,
    )


def _event(case_id: int, kind: str, actor: Principal | None = None, **detail: object) -> CaseEvent:
    return CaseEvent(
        case_id=case_id,
        at=utcnow(),
        kind=kind,
        actor_id=actor.user_id if actor else None,
        detail=detail,
    )


class CaseService:
    async def open_for_study(
        self,
        session: AsyncSession,
        *,
        hospital_id: int,
        study: StudyRef,
        header: Header,
        source: Source,
        info: ClinicalInfo | None,
        principal: Principal | None,
    ) -> tuple[int, bool]:
        """The case of a study, created with the first instance. Returns (case id, created).
        Clinical information given with a later upload is applied to the existing case."""
        now = utcnow()
        values: dict[str, object] = {
            "hospital_id": hospital_id,
            "study_pk": study.study_pk,
            "patient_pk": study.patient_pk,
            "status": CaseStatus.receiving.value,
            "source": source.value,
            "created_by_id": principal.user_id if principal else None,
            "received_at": now,
            "last_instance_at": now,
            "late_instances": 0,
            "flags": [],
            "updated_at": now,
            "requested_subspecialty": None,
            **_info_from_header(header),
        }
        given = info.given() if info else {}
        values.update({k: (v.value if hasattr(v, "value") else v) for k, v in given.items()})
        case_id, created = await repository.create_if_absent(session, values)
        if created:
            session.add(_event(case_id, "received", principal, source=source.value))
            events.publish(
                session, {"type": "case.received", "case_id": case_id, "hospital_id": hospital_id}
            )
        elif given:
            await self._apply_info(session, case_id, ClinicalInfo.model_validate(given), principal)
        return case_id, created

    async def record_arrivals(
        self,
        session: AsyncSession,
        case_id: int,
        *,
        count: int,
        conflicts: Sequence[str],
        opened: bool = False,
    ) -> None:
        """Instances were added to the case's study. Instances arriving after the case was ready
        are counted as late, decided by the row itself so it agrees with a concurrent sweep.
        ``opened``: the case was opened in this transaction, receiving and with this arrival's
        time, so only conflicts are left to record."""
        if count and not opened:
            result = await session.execute(
                _RECORD_ARRIVALS, {"case_id": case_id, "count": count, "now": utcnow()}
            )
            status, hospital_id = result.one()
            if status != CaseStatus.receiving.value:
                session.add(_event(case_id, "late_instances", count=count))
                events.publish(
                    session,
                    {"type": "case.updated", "case_id": case_id, "hospital_id": hospital_id},
                )
        if conflicts:
            case = await repository.get(session, case_id)
            assert case is not None
            if "sop_conflict" not in (case.flags or []):
                case.flags = [*(case.flags or []), "sop_conflict"]
            session.add(_event(case_id, "sop_conflict", sop_instance_uids=list(conflicts)[:100]))

    async def mark_ready(
        self,
        session: AsyncSession,
        case_ids: Sequence[int],
        *,
        reason: str,
        cutoff: datetime | None = None,
    ) -> list[int]:
        now = utcnow()
        extra = [Case.last_instance_at <= cutoff] if cutoff is not None else []
        won = await repository.transition(
            session,
            case_ids,
            from_status=CaseStatus.receiving.value,
            to_values={"status": CaseStatus.ready.value, "ready_at": now, "updated_at": now},
            extra_where=extra,
        )
        for case_id, hospital_id in won:
            session.add(_event(case_id, "ready", reason=reason))
            jobs.enqueue(session, "case_ready", f"case-ready:{case_id}", case_id=case_id)
            events.publish(
                session, {"type": "case.ready", "case_id": case_id, "hospital_id": hospital_id}
            )
        return [case_id for case_id, _ in won]

    async def sweep_stable(
        self, session: AsyncSession, stable_age: float, limit: int = 500
    ) -> list[int]:
        """Cases whose study got no instance for ``stable_age`` seconds become ready."""
        cutoff = utcnow() - timedelta(seconds=stable_age)
        candidates = await repository.stable_candidates(session, cutoff, limit)
        return await self.mark_ready(session, candidates, reason="stable", cutoff=cutoff)

    async def on_ready(self, session: AsyncSession, case_id: int) -> None:
        """Work done once a case is complete (the ``case_ready`` job). Idempotent: recounts the
        study from its rows so lists show exact totals, whatever raced during receipt."""
        case = await repository.get(session, case_id)
        if case is None:
            return
        await archive.refresh_study_summary(session, case.study_pk)
        # Readers open the case soon: have the viewer's metadata ready before they do.
        jobs.enqueue(session, "index_study", f"index-study:{case.study_pk}", study_pk=case.study_pk)
        jobs.enqueue(
            session, "route_case", f"route:{case_id}:ready", case_id=case_id, trigger="ready"
        )

    def note(
        self,
        session: AsyncSession,
        case_id: int,
        kind: str,
        principal: Principal | None,
        at: datetime,
        **detail: object,
    ) -> None:
        """Add an entry to the case's timeline (other domains: a critical finding flagged ...)."""
        event = _event(case_id, kind, principal, **detail)
        event.at = at
        session.add(event)

    async def mark_reported(
        self,
        session: AsyncSession,
        case_id: int,
        *,
        status: CaseStatus,
        from_statuses: Sequence[CaseStatus],
        principal: Principal,
        now: datetime,
        **detail: object,
    ) -> bool:
        """A report of the case was signed (reporting): the case takes the report's status and
        its milestone, and leaves the worklist (its lease ends; its reader stays, as the
        author). Conditional on ``from_statuses``, so a case taken from its reader meanwhile
        is not moved. The first preliminary and the first final time are kept."""
        values: dict[str, object] = {
            "status": status.value,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if status == CaseStatus.preliminary:
            values["preliminary_at"] = func.coalesce(Case.preliminary_at, now)
        else:
            values["final_at"] = func.coalesce(Case.final_at, now)
        moved = await repository.update_if(
            session,
            case_id,
            expect={},
            values=values,
            extra_where=[Case.status.in_([s.value for s in from_statuses])],
        )
        if moved:
            session.add(_event(case_id, f"report_{status.value}", principal, **detail))
        return moved

    # --- reading and editing, always through the scope rule -------------------------------

    async def page(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        statuses: Sequence[CaseStatus],
        priorities: Sequence[Priority],
        limit: int,
        offset: int,
    ) -> CasePage:
        rows, total = await repository.page(
            session,
            scope=auth.scope_of(principal),
            statuses=[s.value for s in statuses],
            priorities=[p.value for p in priorities],
            limit=limit,
            offset=offset,
        )
        audit.record(
            session,
            principal,
            "case.list",
            object_type="case",
            detail={"count": len(rows), "case_ids": [r[0].id for r in rows][:200]},
        )
        return CasePage(items=[to_read(r) for r in rows], total=total, limit=limit, offset=offset)

    async def visible_row(
        self, session: AsyncSession, principal: Principal, case_id: int
    ) -> CaseRow:
        """The case as ``principal`` may see it; NotFound when out of scope (other domains ask
        here rather than repeating the scope rule)."""
        return await self._visible_row(session, principal, case_id)

    async def _visible_row(
        self, session: AsyncSession, principal: Principal, case_id: int
    ) -> CaseRow:
        row = await repository.row(session, case_id, auth.scope_of(principal))
        # Out of scope looks exactly like absent: a hospital must not learn others' case ids.
        if row is None:
            raise NotFound(f"No case {case_id}.")
        return row

    async def priors(
        self, session: AsyncSession, principal: Principal, case_id: int
    ) -> list[PriorRead]:
        """The case patient's earlier studies at the same hospital, newest first. Whoever may
        see the case may see these (the scope rule grants a reader the priors of their cases)."""
        case = (await self._visible_row(session, principal, case_id))[0]
        found = await repository.priors(session, case.study_pk)
        audit.record(
            session,
            principal,
            "case.priors",
            object_type="case",
            object_id=case_id,
            hospital_id=case.hospital_id,
            detail={"count": len(found)},
        )
        return [
            PriorRead(
                study_instance_uid=s.study_instance_uid,
                study_date=s.study_date,
                study_time=s.study_time,
                study_description=s.study_description,
                accession_number=s.accession_number,
                modalities=[m for m in s.modalities_in_study.split("\\") if m],
                number_of_series=s.number_of_series,
                number_of_instances=s.number_of_instances,
                case_id=prior_case,
            )
            for s, prior_case in found
        ]

    async def detail(self, session: AsyncSession, principal: Principal, case_id: int) -> CaseDetail:
        row = await self._visible_row(session, principal, case_id)
        audit.record(
            session,
            principal,
            "case.read",
            object_type="case",
            object_id=case_id,
            hospital_id=row[0].hospital_id,
        )
        timeline = [
            CaseEventRead(
                at=e.at, kind=e.kind, actor_id=e.actor_id, actor_name=name, detail=e.detail
            )
            for e, name in await repository.events(session, case_id)
        ]
        return CaseDetail(
            **to_read(row).model_dump(),
            events=timeline,
            report_id=await repository.report_id(session, case_id),
        )

    async def update_info(
        self, session: AsyncSession, principal: Principal, case_id: int, info: ClinicalInfo
    ) -> CaseDetail:
        row = await self._visible_row(session, principal, case_id)
        if not auth.can_send_for(principal, row[0].hospital_id):
            raise NotFound(f"No case {case_id}.")
        if not info.given():
            raise BadRequest("Nothing to change: give at least one field.")
        await self._apply_info(session, case_id, info, principal)
        audit.record(
            session,
            principal,
            "case.update",
            object_type="case",
            object_id=case_id,
            hospital_id=row[0].hospital_id,
            detail={"fields": sorted(info.given())},
        )
        await session.flush()
        session.expire_all()
        return await self.detail(session, principal, case_id)

    async def _apply_info(
        self, session: AsyncSession, case_id: int, info: ClinicalInfo, principal: Principal | None
    ) -> None:
        case = await repository.get(session, case_id)
        assert case is not None
        given = info.given()
        for key, value in given.items():
            setattr(case, key, value.value if hasattr(value, "value") else value)
        case.updated_at = utcnow()
        session.add(_event(case_id, "clinical_info", principal, fields=sorted(given)))
        if "priority" in given and case.routed_at is not None:
            # The deadline follows the priority, and a case nobody opened yet is routed again.
            stamp = int(case.updated_at.timestamp() * 1000)
            jobs.enqueue(
                session,
                "route_case",
                f"route:{case_id}:priority:{stamp}",
                case_id=case_id,
                trigger="priority",
            )
        events.publish(
            session, {"type": "case.updated", "case_id": case_id, "hospital_id": case.hospital_id}
        )


cases = CaseService()
