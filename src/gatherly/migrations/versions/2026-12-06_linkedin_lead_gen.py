"""LinkedIn user profiles, their sources, the leads taken in and assignment rules (issue 17).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 03:39:21.392674
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "linkedin_assignment_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("form_urn", sa.String(length=200), nullable=True),
        sa.Column("campaign_urn", sa.String(length=200), nullable=True),
        sa.Column("lead_type", sa.String(length=30), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("modified_by_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_assignment_rule")),
    )
    op.create_table(
        "linkedin_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("access_token_encrypted", sa.Text(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
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
            name=op.f("fk_linkedin_profile_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_profile")),
        sa.UniqueConstraint("member_id", name=op.f("uq_linkedin_profile_member_id")),
    )
    with op.batch_alter_table("linkedin_profile", schema=None) as batch_op:
        batch_op.create_index("ix_linkedin_profile_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_linkedin_profile_owning_bu_id", ["owning_bu_id"], unique=False)

    op.create_table(
        "linkedin_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("owner_urn", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=60), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("position_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["linkedin_profile.id"],
            name=op.f("fk_linkedin_source_profile_id_linkedin_profile"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_source")),
        sa.UniqueConstraint(
            "profile_id", "owner_urn", name=op.f("uq_linkedin_source_profile_id_owner_urn")
        ),
    )
    op.create_table(
        "linkedin_lead",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.String(length=100), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("source_urn", sa.String(length=200), nullable=False),
        sa.Column("form_urn", sa.String(length=200), nullable=False),
        sa.Column("form_name", sa.String(length=300), nullable=False),
        sa.Column("lead_type", sa.String(length=30), nullable=False),
        sa.Column("campaign_urn", sa.String(length=200), nullable=True),
        sa.Column("test_lead", sa.Boolean(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("consents", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("assignment_rule_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_linkedin_lead_contact_id_contact"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["lead.id"],
            name=op.f("fk_linkedin_lead_lead_id_lead"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_linkedin_lead_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["linkedin_profile.id"],
            name=op.f("fk_linkedin_lead_profile_id_linkedin_profile"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkedin_lead")),
        sa.UniqueConstraint("response_id", name=op.f("uq_linkedin_lead_response_id")),
    )
    with op.batch_alter_table("linkedin_lead", schema=None) as batch_op:
        batch_op.create_index("ix_linkedin_lead_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_linkedin_lead_owning_bu_id", ["owning_bu_id"], unique=False)
        batch_op.create_index(
            "ix_linkedin_lead_profile", ["profile_id", "submitted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("linkedin_lead", schema=None) as batch_op:
        batch_op.drop_index("ix_linkedin_lead_profile")
        batch_op.drop_index("ix_linkedin_lead_owning_bu_id")
        batch_op.drop_index("ix_linkedin_lead_owner")

    op.drop_table("linkedin_lead")
    op.drop_table("linkedin_source")
    with op.batch_alter_table("linkedin_profile", schema=None) as batch_op:
        batch_op.drop_index("ix_linkedin_profile_owning_bu_id")
        batch_op.drop_index("ix_linkedin_profile_owner")

    op.drop_table("linkedin_profile")
    op.drop_table("linkedin_assignment_rule")
