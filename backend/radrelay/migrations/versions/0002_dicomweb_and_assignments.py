"""dicomweb metadata, patient name search, study date indexes and case assignments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name_search", sa.String(length=402), nullable=False, server_default="")
        )
    # SQLite's lower() folds ASCII only; names written from now on are folded in Python.
    op.execute("UPDATE patients SET name_search = '=' || lower(patient_name) || '='")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.alter_column("name_search", server_default=None)
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_studies_study_date_study_time", ["study_date", "study_time"], unique=False
        )
    op.create_table(
        "case_assignments",
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_assignments_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_case_assignments_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_case_assignments_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_assignments")),
    )
    with op.batch_alter_table("case_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_case_assignments_case_id", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_case_assignments_user_id_active", ["user_id", "active"], unique=False
        )
        batch_op.create_index(
            "uq_case_assignments_one_reader",
            ["case_id"],
            unique=True,
            sqlite_where=sa.text("active AND kind = 'assigned'"),
            postgresql_where=sa.text("active AND kind = 'assigned'"),
        )

    op.create_table(
        "instance_metadata",
        sa.Column(
            "instance_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("bits_allocated", sa.Integer(), nullable=True),
        sa.Column("pixel_offset", sa.BigInteger(), nullable=True),
        sa.Column("frame_length", sa.BigInteger(), nullable=True),
        sa.Column("frames", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_pk"],
            ["instances.id"],
            name=op.f("fk_instance_metadata_instance_pk_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_pk", name=op.f("pk_instance_metadata")),
    )


def downgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index("ix_studies_study_date_study_time")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("name_search")
    op.drop_table("instance_metadata")
    with op.batch_alter_table("case_assignments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_case_assignments_one_reader",
            sqlite_where=sa.text("active AND kind = 'assigned'"),
            postgresql_where=sa.text("active AND kind = 'assigned'"),
        )
        batch_op.drop_index("ix_case_assignments_user_id_active")
        batch_op.drop_index("ix_case_assignments_case_id")

    op.drop_table("case_assignments")
