"""experts, routing decisions, and the routing state of cases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The open case statuses (radrelay.cases.schemas.OPEN_STATUSES) at this revision.
OPEN_SQL = "status IN ('ready', 'offered', 'assigned', 'reading', 'paused')"

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experts",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("employment", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("qualification", sa.String(length=16), nullable=False),
        sa.Column("cap_open_cases", sa.Integer(), nullable=True),
        sa.Column("cap_daily_units", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_experts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_experts")),
    )
    op.create_table(
        "expert_credentials",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "hospital_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["hospital_id"],
            ["hospitals.id"],
            name=op.f("fk_expert_credentials_hospital_id_hospitals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["experts.user_id"],
            name=op.f("fk_expert_credentials_user_id_experts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "hospital_id", name=op.f("pk_expert_credentials")),
    )
    with op.batch_alter_table("expert_credentials", schema=None) as batch_op:
        batch_op.create_index("ix_expert_credentials_hospital_id", ["hospital_id"], unique=False)

    op.create_table(
        "expert_shifts",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["experts.user_id"],
            name=op.f("fk_expert_shifts_user_id_experts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_shifts")),
    )
    with op.batch_alter_table("expert_shifts", schema=None) as batch_op:
        batch_op.create_index("ix_expert_shifts_user_id", ["user_id"], unique=False)

    op.create_table(
        "expert_subspecialties",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subspecialty", sa.String(length=32), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["experts.user_id"],
            name=op.f("fk_expert_subspecialties_user_id_experts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "subspecialty", name=op.f("pk_expert_subspecialties")),
    )
    op.create_table(
        "expert_windows",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["experts.user_id"],
            name=op.f("fk_expert_windows_user_id_experts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_windows")),
    )
    with op.batch_alter_table("expert_windows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_expert_windows_user_id_ends_at", ["user_id", "ends_at"], unique=False
        )

    op.create_table(
        "routing_decisions",
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column(
            "assignee_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("escalation_step", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_routing_decisions_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
    )
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_routing_decisions_case_id_decided_at", ["case_id", "decided_at"], unique=False
        )

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subspecialty", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("work_units", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("sla_target_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "escalation_step", sa.Integer(), nullable=False, server_default=sa.text("'0'")
            )
        )
        batch_op.add_column(
            sa.Column(
                "sla_state", sa.String(length=16), nullable=False, server_default=sa.text("'ok'")
            )
        )
        batch_op.add_column(
            sa.Column("warnings_sent", sa.Integer(), nullable=False, server_default=sa.text("'0'"))
        )
        batch_op.add_column(sa.Column("sla_next_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "reader_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("paused_reason", sa.Text(), nullable=False, server_default=sa.text("''"))
        )
        batch_op.add_column(sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("preliminary_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("final_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_cases_reader_id_status", ["reader_id", "status"], unique=False)
        batch_op.create_index("ix_cases_sla_next_at", ["sla_next_at"], unique=False)
        batch_op.create_index(
            "ix_cases_open_deadline",
            ["deadline", "id"],
            unique=False,
            sqlite_where=sa.text(OPEN_SQL),
            postgresql_where=sa.text(OPEN_SQL),
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_cases_reader_id_users"), "users", ["reader_id"], ["id"]
        )

    # Cases a coordinator assigned before routing existed keep their reader.
    op.execute(
        "UPDATE cases SET status = 'assigned', reader_id = ("
        " SELECT a.user_id FROM case_assignments a"
        " WHERE a.case_id = cases.id AND a.active AND a.kind = 'assigned')"
        " WHERE status = 'ready' AND EXISTS ("
        " SELECT 1 FROM case_assignments a"
        " WHERE a.case_id = cases.id AND a.active AND a.kind = 'assigned')"
    )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cases_reader_id_users"), type_="foreignkey")
        batch_op.drop_index("ix_cases_open_deadline")
        batch_op.drop_index("ix_cases_sla_next_at")
        batch_op.drop_index("ix_cases_reader_id_status")
        batch_op.drop_column("final_at")
        batch_op.drop_column("preliminary_at")
        batch_op.drop_column("opened_at")
        batch_op.drop_column("assigned_at")
        batch_op.drop_column("routed_at")
        batch_op.drop_column("paused_reason")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("reader_id")
        batch_op.drop_column("sla_next_at")
        batch_op.drop_column("warnings_sent")
        batch_op.drop_column("sla_state")
        batch_op.drop_column("escalation_step")
        batch_op.drop_column("deadline")
        batch_op.drop_column("sla_target_minutes")
        batch_op.drop_column("work_units")
        batch_op.drop_column("subspecialty")

    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_decisions_case_id_decided_at")

    op.drop_table("routing_decisions")
    with op.batch_alter_table("expert_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_expert_windows_user_id_ends_at")

    op.drop_table("expert_windows")
    op.drop_table("expert_subspecialties")
    with op.batch_alter_table("expert_shifts", schema=None) as batch_op:
        batch_op.drop_index("ix_expert_shifts_user_id")

    op.drop_table("expert_shifts")
    with op.batch_alter_table("expert_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_expert_credentials_hospital_id")

    op.drop_table("expert_credentials")
    op.drop_table("experts")
