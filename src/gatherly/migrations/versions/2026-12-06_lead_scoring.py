"""lead scoring

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 05:38:08.192051
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scoring_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("grades", sa.JSON(), nullable=False),
        sa.Column("sales_ready", sa.Integer(), nullable=True),
        sa.Column("full_pending", sa.Boolean(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scored_count", sa.Integer(), nullable=True),
        sa.Column("score_seconds", sa.Float(), nullable=True),
        sa.Column("score_error", sa.Text(), nullable=False),
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
            name=op.f("fk_scoring_model_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_model")),
    )
    with op.batch_alter_table("scoring_model", schema=None) as batch_op:
        batch_op.create_index("ix_scoring_model_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_scoring_model_owning_bu_id", ["owning_bu_id"], unique=False)
        batch_op.create_index("ix_scoring_model_state", ["state"], unique=False)

    op.create_table(
        "lead_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=20), nullable=True),
        sa.Column("sales_ready", sa.Boolean(), nullable=False),
        sa.Column("sales_ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owning_bu_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_lead_score_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["lead.id"], name=op.f("fk_lead_score_lead_id_lead"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["scoring_model.id"],
            name=op.f("fk_lead_score_model_id_scoring_model"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owning_bu_id"],
            ["business_unit.id"],
            name=op.f("fk_lead_score_owning_bu_id_business_unit"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_score")),
        sa.UniqueConstraint("model_id", "record_id", name=op.f("uq_lead_score_model_id_record_id")),
    )
    with op.batch_alter_table("lead_score", schema=None) as batch_op:
        batch_op.create_index("ix_lead_score_contact", ["contact_id", "model_id"], unique=False)
        batch_op.create_index("ix_lead_score_lead", ["lead_id"], unique=False)
        batch_op.create_index("ix_lead_score_owner", ["owner_id", "owner_type"], unique=False)
        batch_op.create_index("ix_lead_score_owning_bu_id", ["owning_bu_id"], unique=False)
        batch_op.create_index("ix_lead_score_ready", ["model_id", "sales_ready_at"], unique=False)

    with op.batch_alter_table("email_interaction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_interaction_contact", ["contact_id", "kind", "at"], unique=False
        )

    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sales_ready_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sales_ready_model_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("email_interaction", schema=None) as batch_op:
        batch_op.drop_index("ix_email_interaction_contact")

    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_column("sales_ready_model_id")
        batch_op.drop_column("sales_ready_at")

    with op.batch_alter_table("lead_score", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_score_ready")
        batch_op.drop_index("ix_lead_score_owning_bu_id")
        batch_op.drop_index("ix_lead_score_owner")
        batch_op.drop_index("ix_lead_score_lead")
        batch_op.drop_index("ix_lead_score_contact")

    op.drop_table("lead_score")
    with op.batch_alter_table("scoring_model", schema=None) as batch_op:
        batch_op.drop_index("ix_scoring_model_state")
        batch_op.drop_index("ix_scoring_model_owning_bu_id")
        batch_op.drop_index("ix_scoring_model_owner")

    op.drop_table("scoring_model")
