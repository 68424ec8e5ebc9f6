"""Journeys: the journey, its members and the log of their steps; email sends of a journey step.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 22:46:03.134027
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("re_entry", sa.String(length=20), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("live_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("live_scope", sa.String(length=20), nullable=True),
        sa.Column("live_scope_bu_id", sa.Integer(), nullable=True),
        sa.Column("live_owner_type", sa.String(length=8), nullable=True),
        sa.Column("live_owner_id", sa.Integer(), nullable=True),
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
            name=op.f("fk_journey_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey")),
    )
    with op.batch_alter_table("journey", schema=None) as batch_op:
        batch_op.create_index("ix_journey_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_journey_owning_bu_id", ["owning_bu_id"], unique=False)
        batch_op.create_index("ix_journey_state", ["state"], unique=False)

    op.create_table(
        "journey_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=200), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_journey_member_contact_id_contact"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journey.id"],
            name=op.f("fk_journey_member_journey_id_journey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_member")),
        sa.UniqueConstraint(
            "journey_id",
            "contact_id",
            "entry",
            name=op.f("uq_journey_member_journey_id_contact_id_entry"),
        ),
    )
    with op.batch_alter_table("journey_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journey_member_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            "ix_journey_member_due", ["journey_id", "status", "next_due_at"], unique=False
        )

    op.create_table(
        "journey_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journey.id"],
            name=op.f("fk_journey_action_journey_id_journey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["journey_member.id"],
            name=op.f("fk_journey_action_member_id_journey_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_action")),
        sa.UniqueConstraint(
            "journey_id",
            "contact_id",
            "entry",
            "step",
            name=op.f("uq_journey_action_journey_id_contact_id_entry_step"),
        ),
    )
    with op.batch_alter_table("journey_action", schema=None) as batch_op:
        batch_op.create_index("ix_journey_action_member", ["member_id"], unique=False)

    with op.batch_alter_table("email_send", schema=None) as batch_op:
        batch_op.add_column(sa.Column("journey_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("journey_step", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_email_send_journey_id"), ["journey_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_email_send_journey_id_journey"),
            "journey",
            ["journey_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("email_send", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_email_send_journey_id_journey"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_email_send_journey_id"))
        batch_op.drop_column("journey_step")
        batch_op.drop_column("journey_id")

    with op.batch_alter_table("journey_action", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_action_member")

    op.drop_table("journey_action")
    with op.batch_alter_table("journey_member", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_member_due")
        batch_op.drop_index(batch_op.f("ix_journey_member_contact_id"))

    op.drop_table("journey_member")
    with op.batch_alter_table("journey", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_state")
        batch_op.drop_index("ix_journey_owning_bu_id")
        batch_op.drop_index("ix_journey_owner")

    op.drop_table("journey")
