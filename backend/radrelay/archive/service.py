"""Writing the image index. Reading it for DICOMweb lives in ``radrelay.dicomweb``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.archive.keys import name_search, patient_key
from radrelay.archive.repository import repository
from radrelay.kit.db import utcnow
from radrelay.kit.dicom import Header
from radrelay.models import Patient, Series, Study


@dataclass(frozen=True)
class StudyRef:
    study_pk: int
    patient_pk: int
    created: bool


class ArchiveService:
    async def study_for(self, session: AsyncSession, hospital_id: int, h: Header) -> StudyRef:
        patient_pk, _ = await repository.get_or_create(
            session,
            Patient,
            {"hospital_id": hospital_id, "patient_key": patient_key(h)},
            {
                "patient_id": h.patient_id,
                "issuer_of_patient_id": h.issuer_of_patient_id,
                "patient_name": h.patient_name,
                "name_search": name_search(h.patient_name),
                "birth_date": h.birth_date,
                "sex": h.sex,
                "created_at": utcnow(),
            },
        )
        now = utcnow()
        # Only an instance of a study this process has not indexed gets here: mostly the first.
        study_pk, created = await repository.get_or_create(
            session,
            Study,
            {"hospital_id": hospital_id, "study_instance_uid": h.study_instance_uid},
            {
                "patient_pk": patient_pk,
                "study_date": h.study_date,
                "study_time": h.study_time,
                "accession_number": h.accession_number,
                "issuer_of_accession_number": h.issuer_of_accession_number,
                "study_id": h.study_id,
                "study_description": h.study_description,
                "referring_physician_name": h.referring_physician_name,
                "modalities_in_study": h.modality,
                "number_of_series": 0,
                "number_of_instances": 0,
                "received_at": now,
                "updated_at": now,
            },
            likely_new=True,
        )
        if not created:
            # The study's patient is the one its first instance named.
            study = await repository.study(session, study_pk)
            assert study is not None
            patient_pk = study.patient_pk
        return StudyRef(study_pk, patient_pk, created)

    async def series_for(self, session: AsyncSession, study_pk: int, h: Header) -> tuple[int, bool]:
        return await repository.get_or_create(
            session,
            Series,
            {"study_pk": study_pk, "series_instance_uid": h.series_instance_uid},
            {
                "modality": h.modality,
                "series_number": h.series_number,
                "series_description": h.series_description,
                "body_part_examined": h.body_part_examined,
                "number_of_instances": 0,
                "received_at": utcnow(),
            },
            likely_new=True,  # called when the series is not among those this process knows
        )

    async def digests_for_sops(
        self, session: AsyncSession, study_pk: int, sop_uids: set[str]
    ) -> dict[str, set[str]]:
        """Digests already stored per SOP Instance UID of the study (absent: none)."""
        return await repository.digests_for_sops(session, study_pk, sop_uids)

    def instance_row(
        self,
        *,
        study_pk: int,
        series_pk: int,
        h: Header,
        sha256: str,
        size: int,
        key: str,
        source: str,
        conflict: bool,
    ) -> dict[str, object]:
        return {
            "study_pk": study_pk,
            "series_pk": series_pk,
            "sop_instance_uid": h.sop_instance_uid,
            "sop_class_uid": h.sop_class_uid,
            "instance_number": h.instance_number,
            "transfer_syntax_uid": h.transfer_syntax_uid,
            "rows": h.rows,
            "columns": h.columns,
            "number_of_frames": h.number_of_frames,
            "size_bytes": size,
            "sha256": sha256,
            "storage_key": key,
            "source": source,
            "conflict": conflict,
            "received_at": utcnow(),
        }

    async def add_instances(self, session: AsyncSession, rows: list[dict[str, object]]) -> None:
        if rows:
            await repository.insert_instances(session, rows)

    async def count_added(
        self,
        session: AsyncSession,
        *,
        study_pk: int,
        new_series: int,
        new_instances: int,
        per_series: dict[int, int],
    ) -> None:
        """Keep the counters current with atomic increments (no lost update between
        concurrent receivers); ``refresh_study_summary`` recounts when the study is complete."""
        await repository.add_to_series(session, per_series)
        modalities = None
        if new_series:
            modalities = "\\".join(await repository.modalities_of_study(session, study_pk))
        await repository.add_to_study(
            session,
            study_pk,
            series=new_series,
            instances=new_instances,
            now=utcnow(),
            modalities=modalities,
        )

    async def lock_study(self, session: AsyncSession, study_pk: int) -> None:
        """Serialise writers of one study until the end of the transaction. SQLite needs
        nothing: its write transactions (BEGIN IMMEDIATE) already run one at a time."""
        if session.get_bind().dialect.name != "sqlite":
            await repository.lock_study(session, study_pk)

    async def refresh_study_summary(self, session: AsyncSession, study_pk: int) -> Study:
        await self.lock_study(session, study_pk)  # no instance counted between recount and write
        study = await repository.study(session, study_pk)
        assert study is not None
        series, instances, modalities = await repository.recount_study(session, study_pk)
        study.number_of_series = series
        study.number_of_instances = instances
        study.modalities_in_study = "\\".join(modalities)
        await session.flush()
        return study


archive = ArchiveService()
