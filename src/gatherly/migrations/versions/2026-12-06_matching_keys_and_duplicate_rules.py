"""Matching keys on contacts and leads, duplicate-detection rules, jobs and pairs (issue 17).

Each (BU,) email group's oldest record gets the built-in rule's key before the unique
index is made, as ``gatherly.contact.matching.rekey`` would.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 03:05:37.431936
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _backfill(table: str, scoped: bool) -> None:
    key = "CAST(owning_bu_id AS VARCHAR) || '|' || email" if scoped else "'*|' || email"
    groups = "owning_bu_id, email" if scoped else "email"
    op.execute(
        f"UPDATE {table} SET match_key = {key} WHERE id IN "  # noqa: S608 - our names
        f"(SELECT min(id) FROM {table} WHERE email IS NOT NULL GROUP BY {groups})"
    )


def upgrade() -> None:
    scoped = bool(
        op.get_bind()
        .execute(sa.text("SELECT enabled FROM feature_switch WHERE name = 'bu_scoping'"))
        .scalar()
    )
    op.create_table(
        "duplicate_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("ignore_blank", sa.Boolean(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_by_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_rule")),
        sa.UniqueConstraint("record_type", "name", name=op.f("uq_duplicate_rule_record_type_name")),
    )
    op.create_table(
        "duplicate_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("rule_ids", sa.String(length=400), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pairs", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["user_account.id"],
            name=op.f("fk_duplicate_job_requested_by_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_job")),
    )
    with op.batch_alter_table("duplicate_job", schema=None) as batch_op:
        batch_op.create_index("ix_duplicate_job_user", ["requested_by_id", "id"], unique=False)

    op.create_table(
        "duplicate_pair",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("duplicate_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["duplicate_job.id"],
            name=op.f("fk_duplicate_pair_job_id_duplicate_job"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["duplicate_rule.id"],
            name=op.f("fk_duplicate_pair_rule_id_duplicate_rule"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_pair")),
        sa.UniqueConstraint(
            "job_id",
            "record_id",
            "duplicate_id",
            name=op.f("uq_duplicate_pair_job_id_record_id_duplicate_id"),
        ),
    )
    with op.batch_alter_table("duplicate_pair", schema=None) as batch_op:
        batch_op.create_index("ix_duplicate_pair_duplicate", ["duplicate_id"], unique=False)

    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_key", sa.String(length=340), nullable=True))
    _backfill("contact", scoped)
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index("ux_contact_match_key", ["match_key"], unique=True)

    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_key", sa.String(length=340), nullable=True))
    _backfill("lead", scoped)
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.create_index("ux_lead_match_key", ["match_key"], unique=True)

    with op.batch_alter_table("tombstone", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tombstone", schema=None) as batch_op:
        batch_op.drop_column("merged_into_id")

    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_index("ux_lead_match_key")
        batch_op.drop_column("match_key")

    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index("ux_contact_match_key")
        batch_op.drop_column("match_key")

    with op.batch_alter_table("duplicate_pair", schema=None) as batch_op:
        batch_op.drop_index("ix_duplicate_pair_duplicate")

    op.drop_table("duplicate_pair")
    with op.batch_alter_table("duplicate_job", schema=None) as batch_op:
        batch_op.drop_index("ix_duplicate_job_user")

    op.drop_table("duplicate_job")
    op.drop_table("duplicate_rule")
