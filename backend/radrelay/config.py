"""Settings, read once from ``RADRELAY_*`` environment variables.

The embedded default needs none of them: a SQLite file, file storage and in-process jobs under
``RADRELAY_DATA_DIR``. Scale-out sets the database, Redis and storage URLs (see compose.yaml).
A ``Settings`` object is passed explicitly to whatever needs it, so tests build their own and
nothing global has to be reset.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The checkout (or /app in the image): where worklist_rules/, reports_templates/ and frontend/
# live.
REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RADRELAY_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Local state: SQLite, files, keys.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default is SQLite in data_dir."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for arq jobs and live events; none means in-process."
    )
    queue_name: str = Field(default="radrelay:queue", description="arq queue name.")
    redis_read_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="A Redis reply not come after this long means a dead connection (one "
        "dropped on the way without a reset): it is closed and the command retried.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where DICOM files and report PDFs live: file:///path, or s3://bucket/prefix "
        "for an S3-compatible bucket (received objects wait in a local cache under data_dir, "
        "which the API, gateway and worker processes must share, until a job sends them); "
        "default file://<data_dir>/storage.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="The S3 API of a compatible store (http://127.0.0.1:8333, "
        "https://minio.example.org); none: AWS's own endpoint for the region.",
    )
    s3_region: str | None = Field(
        default=None, description="The bucket's region; none: boto3's default (us-east-1)."
    )
    s3_access_key: str | None = Field(
        default=None,
        description="Access key id for the bucket; none (with no secret key): boto3's usual "
        "chain (AWS_* variables, shared files, an instance role).",
    )
    s3_secret_key: str | None = Field(
        default=None, description="Secret access key that goes with RADRELAY_S3_ACCESS_KEY."
    )
    s3_create_bucket: bool = Field(
        default=False,
        description="Create the bucket when the storage check finds it missing (a development "
        "or compose store); production buckets are made, with their policies, beforehand.",
    )
    s3_cache_bytes: int = Field(
        default=20 * 1024**3,
        ge=0,
        description="Local copies of objects already in the bucket (recently received or read) "
        "kept under data_dir/s3-cache for reading; the least recently used beyond this are "
        "removed. Objects not yet sent are never removed.",
    )
    s3_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often objects still only in the receive cache are sent to the bucket "
        "again (after a crash or an outage), sent copies are dropped from it and the read "
        "cache is trimmed.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs access tokens. Every API process must share it; when unset, one is "
        "generated once and kept in data_dir.",
    )

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None,
        description="The address clients reach the API at (https://pacs.example.org), for the "
        "absolute URLs of DICOMweb answers; default: taken from each request's Host header.",
    )
    dicom_host: str = "0.0.0.0"
    dicom_port: int = 11112
    dicom_ae_title: str = "RADRELAY"
    dicom_max_associations: int = 32
    dicom_enabled: bool = True

    access_token_minutes: int = 15
    refresh_token_days: int = 7
    refresh_reuse_grace_seconds: int = Field(
        default=30,
        description="A refresh token used again this soon after its rotation is honoured (lost "
        "answers, parallel tabs); later reuse revokes the whole chain.",
    )
    login_window_minutes: int = 15
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20

    stable_age_seconds: float = Field(
        default=60.0, description="A study with no new instance for this long is complete."
    )
    sweep_interval_seconds: float = Field(
        default=5.0, description="How often the in-process scheduler looks for stable studies."
    )

    ingest_processes: int | None = Field(
        default=None,
        description="Worker processes that inspect and store received objects; default two per "
        "core, 0 for threads in the serving process.",
    )
    max_upload_bytes: int = Field(default=4 * 1024**3, description="Largest request body.")
    max_instance_bytes: int = Field(default=2 * 1024**3, description="Largest single object.")
    max_zip_members: int = 20_000
    max_zip_ratio: float = Field(
        default=200.0, description="Refuse zip members that expand more than this (zip bombs)."
    )

    cors_origins: list[str] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    frontend_dir: Path | None = Field(
        default=None, description="Built UI to serve at /; default frontend/dist if present."
    )
    rules_dir: Path = Field(
        default=REPO_ROOT / "worklist_rules",
        description="Routing, SLA, subspecialty and workload rules (YAML), checked at start.",
    )
    templates_dir: Path = Field(
        default=REPO_ROOT / "reports_templates",
        description="Report templates (YAML), checked at start.",
    )

    timezone: str = Field(
        default="Asia/Shanghai",
        description="The center's time zone: where a reading day (daily caps) starts.",
    )
    roster_cache_seconds: float = Field(
        default=10.0,
        description="How long routing reuses a hospital's expert profiles (states are always "
        "read fresh): a profile or window change reaches routing within this.",
    )
    sla_watch_seconds: float = Field(
        default=30.0,
        description="How often the SLA watch looks at deadlines, leases and unrouted cases.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        description="Port where `radrelay worker` serves its Prometheus metrics (jobs); none: "
        "not served.",
    )
    ca_passphrase: str | None = Field(
        default=None,
        description="Encrypts the keys of the platform CA and the radiologists' signing keys "
        "under data_dir/ca (at least 16 characters). Default: derived from the secret key, so "
        "changing RADRELAY_SECRET_KEY then locks them; in production set it and keep it out of "
        "data_dir (a copy of data_dir holding the generated secret key holds this default too).",
    )
    center_name: str = Field(
        default="RadRelay 远程影像诊断中心 Reading Center",
        description="The reading center's name: its letterhead on reports and the location of "
        "their signatures.",
    )
    report_font: Path | None = Field(
        default=None,
        description="A TrueType CJK font to embed in report PDFs (for instance "
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc); none: the built-in STSong-Light, "
        "which viewers draw with a Chinese font of their own (see docs/reports.md).",
    )
    critical_result_minutes: int = Field(
        default=60,
        ge=1,
        description="A critical finding's communication to the hospital is due this many "
        "minutes after the reader flags it; coordinators are alerted once when it is overdue.",
    )
    delivery_backoff_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The wait after a delivery's first failed attempt; each later wait doubles, "
        "up to an hour (docs/delivery.md).",
    )
    delivery_retry_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often the retry loop looks for deliveries whose next attempt is due "
        "and for attempts a dead worker left unfinished.",
    )
    delivery_claim_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long an attempt's claim on a delivery lasts without a sign of life "
        "from the worker sending it (it renews the claim every third of this); a worker that "
        "died mid-send is noticed after this, and the delivery is sent again.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token Prometheus must present at /metrics; none: /metrics is open "
        "(it holds counts and timings, never patient data).",
    )

    @field_validator("dicom_ae_title")
    @classmethod
    def _ae_title(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > 16:
            raise ValueError("an AE title has 1 to 16 characters")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'radrelay.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"file://{(self.data_dir / 'storage').resolve()}"

    @property
    def receive_storage_url(self) -> str:
        """Where ingest writes a received object: the storage itself, or for object storage
        its local receive cache (a worker sends the objects on later), so no upload is on the
        receive path."""
        url = self.resolved_storage_url
        if url.startswith("s3://"):
            return f"file://{(self.s3_cache_dir / 'pending').resolve()}"
        return url

    @property
    def s3_cache_dir(self) -> Path:
        """Object storage's local side, on the file system of ``tmp_dir`` (received files are
        linked in, not copied): ``pending/`` objects not yet in the bucket, ``cached/`` copies
        of objects that are."""
        return self.data_dir / "s3-cache"

    @property
    def tmp_dir(self) -> Path:
        """Receive area on the same file system as file storage, so a finished file is renamed
        into place (atomic) rather than copied."""
        return self.data_dir / "tmp"

    @property
    def ca_dir(self) -> Path:
        """The platform CA and the signing keys (``reporting.pki``); ``ca.crt`` in it is the
        certificate that verifiers trust."""
        return self.data_dir / "ca"

    def resolved_ca_passphrase(self) -> str:
        if self.ca_passphrase:
            return self.ca_passphrase
        # A key of its own, not the secret key itself: tokens and CA keys stay separable.
        key = self.resolved_secret_key().encode()
        return hmac.new(key, b"radrelay ca passphrase v1", hashlib.sha256).hexdigest()

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            # Several processes may start at once on one data dir: each writes its own candidate
            # and the first hard link wins, so all of them end up reading the same key.
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"secret_key.{secrets.token_hex(8)}")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()
