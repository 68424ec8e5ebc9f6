"""Marketing forms, pages, their submissions and interactions (issue 17).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 03:27:36.478438
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketing_form",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("consents", sa.JSON(), nullable=False),
        sa.Column("on_submit", sa.String(length=20), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("lead_topic", sa.String(length=300), nullable=False),
        sa.Column("submit_label", sa.String(length=60), nullable=False),
        sa.Column("thank_you", sa.Text(), nullable=False),
        sa.Column("redirect_url", sa.String(length=2000), nullable=True),
        sa.Column("embed_nonce", sa.String(length=32), nullable=False),
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
            name=op.f("fk_marketing_form_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["duplicate_rule.id"],
            name=op.f("fk_marketing_form_rule_id_duplicate_rule"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_form")),
    )
    with op.batch_alter_table("marketing_form", schema=None) as batch_op:
        batch_op.create_index("ix_marketing_form_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_marketing_form_owning_bu_id", ["owning_bu_id"], unique=False)

    op.create_table(
        "marketing_page",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("modified_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["marketing_form.id"],
            name=op.f("fk_marketing_page_form_id_marketing_form"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_marketing_page_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_page")),
        sa.UniqueConstraint("slug", name=op.f("uq_marketing_page_slug")),
    )
    with op.batch_alter_table("marketing_page", schema=None) as batch_op:
        batch_op.create_index("ix_marketing_page_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_marketing_page_owning_bu_id", ["owning_bu_id"], unique=False)

    op.create_table(
        "form_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("consents", sa.JSON(), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=False),
        sa.Column("visitor", sa.String(length=40), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=60), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_form_submission_contact_id_contact"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["marketing_form.id"],
            name=op.f("fk_form_submission_form_id_marketing_form"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["lead.id"],
            name=op.f("fk_form_submission_lead_id_lead"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_form_submission_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["marketing_page.id"],
            name=op.f("fk_form_submission_page_id_marketing_page"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_submission")),
    )
    with op.batch_alter_table("form_submission", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_form_submission_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index("ix_form_submission_form", ["form_id", "id"], unique=False)
        batch_op.create_index("ix_form_submission_ip", ["ip_hash", "submitted_at"], unique=False)
        batch_op.create_index("ix_form_submission_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_form_submission_owning_bu_id", ["owning_bu_id"], unique=False)
        batch_op.create_index("ix_form_submission_state", ["state", "id"], unique=False)

    op.create_table(
        "capture_interaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=True),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("visitor", sa.String(length=40), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_capture_interaction_contact_id_contact"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["marketing_form.id"],
            name=op.f("fk_capture_interaction_form_id_marketing_form"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["marketing_page.id"],
            name=op.f("fk_capture_interaction_page_id_marketing_page"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["form_submission.id"],
            name=op.f("fk_capture_interaction_submission_id_form_submission"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_interaction")),
        sa.UniqueConstraint("submission_id", name=op.f("uq_capture_interaction_submission_id")),
    )
    with op.batch_alter_table("capture_interaction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_capture_interaction_contact", ["contact_id", "kind", "at"], unique=False
        )
        batch_op.create_index(
            "ix_capture_interaction_form", ["form_id", "kind", "at"], unique=False
        )
        batch_op.create_index(
            "ix_capture_interaction_page", ["page_id", "kind", "at"], unique=False
        )
        batch_op.create_index("ix_capture_interaction_visitor", ["visitor"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("capture_interaction", schema=None) as batch_op:
        batch_op.drop_index("ix_capture_interaction_visitor")
        batch_op.drop_index("ix_capture_interaction_page")
        batch_op.drop_index("ix_capture_interaction_form")
        batch_op.drop_index("ix_capture_interaction_contact")

    op.drop_table("capture_interaction")
    with op.batch_alter_table("form_submission", schema=None) as batch_op:
        batch_op.drop_index("ix_form_submission_state")
        batch_op.drop_index("ix_form_submission_owning_bu_id")
        batch_op.drop_index("ix_form_submission_owner")
        batch_op.drop_index("ix_form_submission_ip")
        batch_op.drop_index("ix_form_submission_form")
        batch_op.drop_index(batch_op.f("ix_form_submission_contact_id"))

    op.drop_table("form_submission")
    with op.batch_alter_table("marketing_page", schema=None) as batch_op:
        batch_op.drop_index("ix_marketing_page_owning_bu_id")
        batch_op.drop_index("ix_marketing_page_owner")

    op.drop_table("marketing_page")
    with op.batch_alter_table("marketing_form", schema=None) as batch_op:
        batch_op.drop_index("ix_marketing_form_owning_bu_id")
        batch_op.drop_index("ix_marketing_form_owner")

    op.drop_table("marketing_form")
