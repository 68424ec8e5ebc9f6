"""when each Teams webinar was last synced (the event page's "last synced at")

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Webinars synced before this revision show no time until their next sync.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("teams_webinar") as batch:
        batch.add_column(sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams_webinar") as batch:
        batch.drop_column("last_synced_at")
