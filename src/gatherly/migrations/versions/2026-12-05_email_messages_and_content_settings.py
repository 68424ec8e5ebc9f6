"""email messages and content settings

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Email messages and the content settings (sender, postal address, subscription centre)
they send with; at most one default content setting per business unit and one for the
organisation, enforced by partial unique indexes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_content_setting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("sender_email", sa.String(length=320), nullable=False),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("postal_address", sa.Text(), nullable=False),
        sa.Column("subscription_centre_url", sa.String(length=2000), nullable=True),
        sa.Column("default_for", sa.String(length=20), nullable=True),
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
            name=op.f("fk_email_content_setting_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_content_setting")),
    )
    with op.batch_alter_table("email_content_setting", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_content_setting_owner", ["owner_id", "owner_type"], unique=False
        )
        batch_op.create_index(
            "ix_email_content_setting_owning_bu_id", ["owning_bu_id"], unique=False
        )
        batch_op.create_index(
            "uq_email_content_setting_bu_default",
            ["owning_bu_id"],
            unique=True,
            sqlite_where=sa.text("default_for = 'business_unit'"),
            postgresql_where=sa.text("default_for = 'business_unit'"),
        )
        batch_op.create_index(
            "uq_email_content_setting_org_default",
            ["default_for"],
            unique=True,
            sqlite_where=sa.text("default_for = 'organization'"),
            postgresql_where=sa.text("default_for = 'organization'"),
        )

    op.create_table(
        "email_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("preheader", sa.String(length=500), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("content_setting_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=10), server_default="draft", nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("modified_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["content_setting_id"],
            ["email_content_setting.id"],
            name=op.f("fk_email_message_content_setting_id_email_content_setting"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["marketing_event.id"],
            name=op.f("fk_email_message_event_id_marketing_event"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_email_message_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_message")),
    )
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.create_index("ix_email_message_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_email_message_owning_bu_id", ["owning_bu_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.drop_index("ix_email_message_owning_bu_id")
        batch_op.drop_index("ix_email_message_owner")

    op.drop_table("email_message")
    with op.batch_alter_table("email_content_setting", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_email_content_setting_org_default",
            sqlite_where=sa.text("default_for = 'organization'"),
            postgresql_where=sa.text("default_for = 'organization'"),
        )
        batch_op.drop_index(
            "uq_email_content_setting_bu_default",
            sqlite_where=sa.text("default_for = 'business_unit'"),
            postgresql_where=sa.text("default_for = 'business_unit'"),
        )
        batch_op.drop_index("ix_email_content_setting_owning_bu_id")
        batch_op.drop_index("ix_email_content_setting_owner")

    op.drop_table("email_content_setting")
