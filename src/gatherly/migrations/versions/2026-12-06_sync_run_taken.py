"""sync runs: when and which worker took a queued run (it then beats every few seconds:
one silent for a minute, or whose process is gone, died with its worker)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("taken_by", sa.String(length=300), nullable=True))
    # Runs already finished or going were taken by the worker that ran them.
    op.execute("UPDATE sync_run SET taken_at = started_at")


def downgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("taken_by")
        batch.drop_column("taken_at")
