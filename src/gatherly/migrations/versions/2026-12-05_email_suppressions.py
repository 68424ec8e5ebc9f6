"""email suppressions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

Addresses that must not get marketing email and why; at most one active row per
address, reason and topic (a partial unique index), lifted rows kept as history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=100), server_default="", nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by_id", sa.Integer(), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_suppression")),
    )
    with op.batch_alter_table("email_suppression", schema=None) as batch_op:
        batch_op.create_index(
            "uq_email_suppression_active",
            ["email", "reason", "topic"],
            unique=True,
            sqlite_where=sa.text("lifted_at IS NULL"),
            postgresql_where=sa.text("lifted_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("email_suppression", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_email_suppression_active",
            sqlite_where=sa.text("lifted_at IS NULL"),
            postgresql_where=sa.text("lifted_at IS NULL"),
        )

    op.drop_table("email_suppression")
