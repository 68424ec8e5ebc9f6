"""teams change notifications: the Graph subscriptions Gatherly holds, the events Graph said
changed (waiting for their targeted sync), and the setting with the public base URL

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "teams_notified",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("graph_id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams_notified")),
        sa.UniqueConstraint("graph_id", name=op.f("uq_teams_notified_graph_id")),
    )
    op.create_table(
        "teams_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=600), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("webinar_id", sa.Integer(), nullable=True),
        sa.Column("graph_id", sa.String(length=100), nullable=True),
        sa.Column("client_state_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_notification_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_catch_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("needs_catch_up", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("notification_url", sa.String(length=600), nullable=False),
        sa.ForeignKeyConstraint(
            ["webinar_id"],
            ["teams_webinar.id"],
            name=op.f("fk_teams_subscription_webinar_id_teams_webinar"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams_subscription")),
        sa.UniqueConstraint("graph_id", name=op.f("uq_teams_subscription_graph_id")),
        sa.UniqueConstraint("resource", name=op.f("uq_teams_subscription_resource")),
    )
    with op.batch_alter_table("teams_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_teams_subscription_webinar_id"), ["webinar_id"], unique=False
        )

    with op.batch_alter_table("teams_connection", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "notifications_enabled", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch_op.add_column(sa.Column("public_base_url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams_connection", schema=None) as batch_op:
        batch_op.drop_column("public_base_url")
        batch_op.drop_column("notifications_enabled")

    with op.batch_alter_table("teams_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teams_subscription_webinar_id"))

    op.drop_table("teams_subscription")
    op.drop_table("teams_notified")
