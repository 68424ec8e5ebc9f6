"""reports and dashboards

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 05:52:40.475372
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("modified_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_dashboard_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard")),
    )
    with op.batch_alter_table("dashboard", schema=None) as batch_op:
        batch_op.create_index("ix_dashboard_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_dashboard_owning_bu_id", ["owning_bu_id"], unique=False)

    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("modified_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_report_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
    )
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index("ix_report_name", ["name"], unique=False)
        batch_op.create_index("ix_report_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_report_owning_bu_id", ["owning_bu_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index("ix_report_owning_bu_id")
        batch_op.drop_index("ix_report_owner")
        batch_op.drop_index("ix_report_name")

    op.drop_table("report")
    with op.batch_alter_table("dashboard", schema=None) as batch_op:
        batch_op.drop_index("ix_dashboard_owning_bu_id")
        batch_op.drop_index("ix_dashboard_owner")

    op.drop_table("dashboard")
