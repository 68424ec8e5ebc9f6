"""town halls and recorded run notes

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 06:57:35.965777

Teams town halls sync like webinars: ``teams_webinar.kind`` says which Graph collection an
event lives in (existing rows are webinars). ``sync_run.recorded_notes`` holds what a run
noted as it went (an unknown time-zone name read as UTC); existing runs have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recorded_notes", sa.JSON(), server_default="[]", nullable=False)
        )

    with op.batch_alter_table("teams_webinar", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), server_default="webinar", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("teams_webinar", schema=None) as batch_op:
        batch_op.drop_column("kind")

    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_column("recorded_notes")
