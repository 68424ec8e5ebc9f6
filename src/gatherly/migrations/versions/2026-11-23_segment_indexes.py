"""segment indexes: registrations and attendance looked up per contact and per event

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_registration", schema=None) as batch_op:
        batch_op.drop_index("ix_event_registration_contact_id")
        batch_op.create_index(
            "ix_event_registration_contact", ["contact_id", "event_id", "status"], unique=False
        )
    with op.batch_alter_table("event_attendance", schema=None) as batch_op:
        batch_op.drop_index("ix_event_attendance_contact_id")
        batch_op.create_index(
            "ix_event_attendance_contact",
            ["contact_id", "event_id", "excluded_reason"],
            unique=False,
        )
        batch_op.create_index(
            "ix_event_attendance_event_contact",
            ["event_id", "contact_id", "total_seconds", "excluded_reason"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("event_attendance", schema=None) as batch_op:
        batch_op.drop_index("ix_event_attendance_event_contact")
        batch_op.drop_index("ix_event_attendance_contact")
        batch_op.create_index("ix_event_attendance_contact_id", ["contact_id"], unique=False)
    with op.batch_alter_table("event_registration", schema=None) as batch_op:
        batch_op.drop_index("ix_event_registration_contact")
        batch_op.create_index("ix_event_registration_contact_id", ["contact_id"], unique=False)
