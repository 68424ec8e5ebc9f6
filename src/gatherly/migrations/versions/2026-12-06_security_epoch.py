"""security epoch: one row whose value database triggers change with every change to who
holds what, so API processes can cache principals and drop them on the very next request

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here (a migration does not follow the models): table -> the columns whose update
# changes a principal (None: any column). Insertions and deletions always count.
SOURCES: dict[str, tuple[str, ...] | None] = {
    "user_account": ("username", "business_unit_id", "disabled"),
    "team": ("name", "business_unit_id"),
    "team_member": None,
    "team_role": None,
    "user_role": None,
    "security_role": ("name", "is_system_admin"),
    "role_privilege": None,
    "api_token": ("user_id", "revoked_at", "expires_at"),
}
FUNCTION = "gatherly_security_changed"


def _sqlite_events(columns: tuple[str, ...] | None) -> list[tuple[str, str]]:
    update = "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"
    return [("insert", "INSERT"), ("update", update), ("delete", "DELETE")]


def upgrade() -> None:
    table = op.create_table(
        "security_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_epoch")),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # noqa: S608 (constants)
            "UPDATE security_epoch SET value = floor(random() * 9007199254740991)::bigint "
            "WHERE id = 1; RETURN NULL; END $$"
        )
        for name, columns in SOURCES.items():
            update = "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"
            events = f"INSERT OR {update} OR DELETE OR TRUNCATE"
            op.execute(
                f"CREATE TRIGGER security_changed AFTER {events} ON {name} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )
        return
    for name, columns in SOURCES.items():
        for suffix, event in _sqlite_events(columns):
            op.execute(
                f"CREATE TRIGGER security_changed_{name}_{suffix} AFTER {event} ON {name} "  # noqa: S608
                "BEGIN UPDATE security_epoch SET value = random() WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in SOURCES:
            op.execute(f"DROP TRIGGER IF EXISTS security_changed ON {name}")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    else:
        for name, columns in SOURCES.items():
            for suffix, _event in _sqlite_events(columns):
                op.execute(f"DROP TRIGGER IF EXISTS security_changed_{name}_{suffix}")
    op.drop_table("security_epoch")
