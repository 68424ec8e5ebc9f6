"""audit trail (who, what, before, after) and API token expiry with a token policy

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

The audit entry's one ``target`` text becomes a target type, id and label, with the
actor's name and the state before and after; existing feature switch entries are carried
over (their ``enabled``/``previous`` details become after/before). API tokens gain an
optional expiry (tokens made before keep none); ``installation_setting`` holds the
administrator's token policy.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_entries = sa.table(
    "audit_entry",
    sa.column("id", sa.Integer()),
    sa.column("actor_id", sa.Integer()),
    sa.column("actor_name", sa.String()),
    sa.column("action", sa.String()),
    sa.column("target", sa.String()),
    sa.column("target_type", sa.String()),
    sa.column("target_id", sa.String()),
    sa.column("target_label", sa.String()),
    sa.column("before", sa.JSON()),
    sa.column("after", sa.JSON()),
    sa.column("details", sa.JSON()),
)
_users = sa.table("user_account", sa.column("id", sa.Integer()), sa.column("username", sa.String()))


def _carry_over() -> None:
    """Old entries in the new shape (feature switches are the only kind there were)."""
    conn = op.get_bind()
    names = dict(conn.execute(sa.select(_users.c.id, _users.c.username)).all())
    rows = conn.execute(
        sa.select(
            _entries.c.id, _entries.c.actor_id, _entries.c.action, _entries.c.target
        ).add_columns(_entries.c.details)
    ).all()
    for row in rows:
        details: dict[str, Any] = dict(row.details or {})
        values: dict[str, Any] = {
            "actor_name": names.get(row.actor_id, "") if row.actor_id else "",
            "target_id": (row.target or "")[:64],
            "target_label": row.target or "",
            "target_type": "",
            "details": details,
        }
        if row.action == "feature.set":
            values["target_type"] = "feature"
            values["before"] = {"enabled": details.pop("previous", None)}
            values["after"] = {"enabled": details.pop("enabled", None)}
            values["details"] = details
        conn.execute(sa.update(_entries).where(_entries.c.id == row.id).values(**values))


def upgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("actor_name", sa.String(length=120), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("target_type", sa.String(length=60), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("target_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("target_label", sa.String(length=300), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("before", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("after", sa.JSON(), nullable=True))
    _carry_over()
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_column("target")
        batch_op.create_index("ix_audit_entry_actor", ["actor_id", "id"], unique=False)
        batch_op.create_index(
            "ix_audit_entry_target", ["target_type", "target_id", "id"], unique=False
        )
        batch_op.create_index("ix_audit_entry_at", ["at"], unique=False)

    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "installation_setting",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_installation_setting")),
    )


def _carry_back() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _entries.c.id,
            _entries.c.action,
            _entries.c.target_id,
            _entries.c.before,
            _entries.c.after,
            _entries.c.details,
        )
    ).all()
    for row in rows:
        details: dict[str, Any] = dict(row.details or {})
        if row.action == "feature.set":
            details["enabled"] = (row.after or {}).get("enabled")
            details["previous"] = (row.before or {}).get("enabled")
        conn.execute(
            sa.update(_entries)
            .where(_entries.c.id == row.id)
            .values(target=row.target_id or "", details=details)
        )


def downgrade() -> None:
    op.drop_table("installation_setting")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("expires_at")

    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entry_at")
        batch_op.drop_index("ix_audit_entry_target")
        batch_op.drop_index("ix_audit_entry_actor")
        batch_op.add_column(
            sa.Column("target", sa.String(length=200), nullable=False, server_default="")
        )
    _carry_back()
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_column("after")
        batch_op.drop_column("before")
        batch_op.drop_column("target_label")
        batch_op.drop_column("target_id")
        batch_op.drop_column("target_type")
        batch_op.drop_column("actor_name")
