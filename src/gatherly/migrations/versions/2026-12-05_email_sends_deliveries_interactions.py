"""Email sends, one delivery per recipient, the interactions they lead to, and the
subscription topic of a message.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 21:37:37.172145
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("topic", sa.String(length=100), server_default="", nullable=False)
        )
    op.create_table(
        "email_send",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("segment_ids", sa.JSON(), nullable=False),
        sa.Column("list_ids", sa.JSON(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wake_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=True),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("modified_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["email_message.id"],
            name=op.f("fk_email_send_message_id_email_message"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_email_send_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_send")),
    )
    with op.batch_alter_table("email_send", schema=None) as batch_op:
        batch_op.create_index("ix_email_send_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_email_send_owning_bu_id", ["owning_bu_id"], unique=False)
        batch_op.create_index("ix_email_send_state", ["state", "scheduled_at"], unique=False)

    op.create_table(
        "email_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("send_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id_header", sa.String(length=255), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_email_delivery_contact_id_contact"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["send_id"],
            ["email_send.id"],
            name=op.f("fk_email_delivery_send_id_email_send"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_delivery")),
        sa.UniqueConstraint(
            "send_id", "contact_id", name=op.f("uq_email_delivery_send_id_contact_id")
        ),
    )
    with op.batch_alter_table("email_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_delivery_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index("ix_email_delivery_work", ["send_id", "state", "id"], unique=False)

    op.create_table(
        "email_interaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("send_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["email_delivery.id"],
            name=op.f("fk_email_interaction_delivery_id_email_delivery"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["email_message.id"],
            name=op.f("fk_email_interaction_message_id_email_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["send_id"],
            ["email_send.id"],
            name=op.f("fk_email_interaction_send_id_email_send"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_interaction")),
    )
    with op.batch_alter_table("email_interaction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_interaction_delivery_id"), ["delivery_id"], unique=False
        )
        batch_op.create_index(
            "ix_email_interaction_message", ["message_id", "kind", "at"], unique=False
        )
        batch_op.create_index("ix_email_interaction_send", ["send_id", "kind", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("email_interaction", schema=None) as batch_op:
        batch_op.drop_index("ix_email_interaction_send")
        batch_op.drop_index("ix_email_interaction_message")
        batch_op.drop_index(batch_op.f("ix_email_interaction_delivery_id"))

    op.drop_table("email_interaction")
    with op.batch_alter_table("email_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_email_delivery_work")
        batch_op.drop_index(batch_op.f("ix_email_delivery_contact_id"))

    op.drop_table("email_delivery")
    with op.batch_alter_table("email_send", schema=None) as batch_op:
        batch_op.drop_index("ix_email_send_state")
        batch_op.drop_index("ix_email_send_owning_bu_id")
        batch_op.drop_index("ix_email_send_owner")

    op.drop_table("email_send")
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.drop_column("topic")
