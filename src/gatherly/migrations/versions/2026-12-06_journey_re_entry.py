"""Journey re-entry and steps taken together: a journey's email step sends once per pass,
so a delivery is unique per (send, contact, entry); interactions are found by their
delivery; a journey action keeps one foreign key and its unique key only (a step taken by
a million members writes a million rows).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entry", sa.Integer(), server_default="1", nullable=False))
        batch_op.drop_constraint("uq_email_delivery_send_id_contact_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_email_delivery_send_id_contact_id_entry"),
            ["send_id", "contact_id", "entry"],
        )
    with op.batch_alter_table("email_interaction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_interaction_delivery", ["delivery_id", "kind"], unique=False
        )
    with op.batch_alter_table("journey_member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=40), nullable=True))
    with op.batch_alter_table("journey_action", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_action_member")
        batch_op.drop_constraint("fk_journey_action_journey_id_journey", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("journey_member", schema=None) as batch_op:
        batch_op.drop_column("outcome")
    with op.batch_alter_table("journey_action", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_journey_action_journey_id_journey"),
            "journey",
            ["journey_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index("ix_journey_action_member", ["member_id"], unique=False)
    with op.batch_alter_table("email_interaction", schema=None) as batch_op:
        batch_op.drop_index("ix_email_interaction_delivery")
    with op.batch_alter_table("email_delivery", schema=None) as batch_op:
        batch_op.drop_constraint("uq_email_delivery_send_id_contact_id_entry", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_email_delivery_send_id_contact_id"), ["send_id", "contact_id"]
        )
        batch_op.drop_column("entry")
