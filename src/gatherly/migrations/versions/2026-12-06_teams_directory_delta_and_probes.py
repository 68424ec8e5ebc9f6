"""teams directory delta and probes: the directory read through /users/delta, organizers
told from other users, and when each user was last probed on their own

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("teams_connection", schema=None) as batch_op:
        batch_op.add_column(sa.Column("users_delta_link", sa.Text(), nullable=True))
    with op.batch_alter_table("teams_organizer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("organizes", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("probed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    # Users with webinars already known organize them.
    op.execute(
        "UPDATE teams_organizer SET organizes = true WHERE EXISTS "
        "(SELECT 1 FROM teams_webinar WHERE teams_webinar.organizer_id = teams_organizer.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("teams_organizer", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
        batch_op.drop_column("probed_at")
        batch_op.drop_column("organizes")
    with op.batch_alter_table("teams_connection", schema=None) as batch_op:
        batch_op.drop_column("users_delta_link")
