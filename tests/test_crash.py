"""What the gateway acknowledged survives a crash: the server is killed with SIGKILL while a
sender is in the middle of a series, restarted, and checked through the API and on disk."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE

import helpers
from conftest import World, admin_of, running_server, wait_until
from radrelay.kit.db import Database
from test_cstore import CALLED_AE, SUCCESS, case_of, dataset_bytes, status_of, store


class Sender(threading.Thread):
    """Sends a series one instance at a time over one association and records what the gateway
    acknowledged, until the series ends or the association dies under it."""

    def __init__(self, port: int, calling: str, datasets: list[Dataset]):
        super().__init__(daemon=True)
        self.port, self.calling, self.datasets = port, calling, datasets
        self.acknowledged: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        ae = AE(ae_title=self.calling)
        # pynetdicom does not notice that the peer closed the connection while it waits for a
        # response; the DIMSE timeout is how a real sender finds out too. A store takes well under
        # a second here, even on a busy machine.
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        ae.add_requested_context(
            self.datasets[0].SOPClassUID, self.datasets[0].file_meta.TransferSyntaxUID
        )
        try:
            assoc = helpers.requests_only(ae.associate("127.0.0.1", self.port, ae_title=CALLED_AE))
            assert assoc.is_established
            for ds in self.datasets:
                if not assoc.is_established:
                    break
                if status_of(assoc.send_c_store(ds)) == SUCCESS:
                    self.acknowledged.append(ds.SOPInstanceUID)
            if assoc.is_established:
                assoc.release()
        except RuntimeError:
            pass  # the association ended between the check and the send: the kill
        except BaseException as exc:
            self.error = exc
        finally:
            ae.shutdown()


class TestKilledMidTransfer:
    """A sender deletes what it has sent once the gateway says success (0x0000); an instance
    acknowledged and then lost in a crash is lost for good."""

    def test_every_acknowledged_instance_survives_sigkill(self, tmp_path: Path) -> None:
        with running_server(tmp_path / "server") as server:
            hospital = World(server, admin_of(server)).hospital()
            datasets = helpers.study("CT", slices=60, size=128)
            study_uid = datasets[0].StudyInstanceUID
            sender = Sender(server.dicom_port, hospital.ae_title, datasets)
            sender.start()
            wait_until(
                lambda: len(sender.acknowledged) >= 15 or not sender.is_alive(),
                timeout=60,
                interval=0.01,
                what="15 acknowledged instances",
            )
            server.stop(kill=True)
            sender.join(timeout=60)
            assert not sender.is_alive() and sender.error is None, sender.error
            acknowledged = set(sender.acknowledged)
            # Fewer: the sender gave up before the kill; all: the kill came after the series and
            # proves nothing.
            assert 15 <= len(acknowledged) < len(datasets), len(acknowledged)

            server.start()
            case = case_of(hospital, study_uid)
            assert case["number_of_instances"] >= len(acknowledged)
            sent = {ds.SOPInstanceUID: ds for ds in datasets}
            series = (
                server.storage_root / f"h{hospital.id}" / study_uid / datasets[0].SeriesInstanceUID
            )
            for sop_uid in acknowledged:
                (path,) = series.glob(f"{sop_uid}.*.dcm")
                stored = pydicom.dcmread(path)
                assert stored.SOPInstanceUID == sop_uid
                assert dataset_bytes(path) == dataset_bytes_of(sent[sop_uid], tmp_path)

            # The sender, having seen the failure, sends everything again: the study completes
            # and nothing the gateway already had is counted or stored twice.
            assert store(server, hospital.ae_title, datasets) == [SUCCESS] * len(datasets)
            case = case_of(hospital, study_uid)
            assert case["number_of_instances"] == len(datasets)
            assert case["number_of_series"] == 1
            assert "sop_conflict" not in case["flags"]
            for sop_uid in sent:
                assert len(list(series.glob(f"{sop_uid}.*.dcm"))) == 1
            assert len(list(series.iterdir())) == len(datasets)


def dataset_bytes_of(ds: Dataset, folder: Path) -> bytes:
    (path,) = helpers.write([ds], folder / ds.SOPInstanceUID)
    return dataset_bytes(path)


class TestPowerLoss:
    """A SIGKILL leaves what SQLite wrote in the operating system's cache, which outlives the
    process; a power cut or a kernel crash does not. The gateway fsyncs each file before its row
    and answers after the commit, so the commit must reach the disk too: in WAL mode with
    ``synchronous=NORMAL`` the last acknowledged rows could roll back, leaving their files
    unreferenced while their senders, told "success", never send them again."""

    def test_the_embedded_database_syncs_every_commit(self, tmp_path: Path) -> None:
        async def level() -> int:
            db = Database(f"sqlite+aiosqlite:///{tmp_path / 'radrelay.db'}")
            try:
                async with db.engine.connect() as conn:
                    mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                    assert mode == "wal"
                    return int((await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one())
            finally:
                await db.dispose()

        assert asyncio.run(level()) == 2  # FULL: the WAL is synced at each commit
