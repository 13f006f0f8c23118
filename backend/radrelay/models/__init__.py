"""All tables, imported here so Alembic and the app see one complete metadata."""

from radrelay.models.archive import Instance, InstanceMetadata, Patient, Series, Study
from radrelay.models.audit import AuditEvent
from radrelay.models.base import Base
from radrelay.models.case import Case, CaseAssignment, CaseEvent, RoutingDecision
from radrelay.models.delivery import Delivery
from radrelay.models.expert import (
    Expert,
    ExpertCredential,
    ExpertShift,
    ExpertSubspecialty,
    ExpertWindow,
)
from radrelay.models.hospital import DeliveryEndpoint, Hospital, HospitalAETitle
from radrelay.models.report import (
    CriticalFinding,
    Report,
    ReportDraft,
    ReportSignature,
    ReportVersion,
)
from radrelay.models.user import RefreshToken, User

__all__ = [
    "AuditEvent",
    "Base",
    "Case",
    "CaseAssignment",
    "CaseEvent",
    "CriticalFinding",
    "Delivery",
    "DeliveryEndpoint",
    "Expert",
    "ExpertCredential",
    "ExpertShift",
    "ExpertSubspecialty",
    "ExpertWindow",
    "Hospital",
    "HospitalAETitle",
    "Instance",
    "InstanceMetadata",
    "Patient",
    "RefreshToken",
    "Report",
    "ReportDraft",
    "ReportSignature",
    "ReportVersion",
    "RoutingDecision",
    "Series",
    "Study",
    "User",
]
