"""Record types the access engine knows, registered by the domains that own them.

The engine never imports contact or event code: each domain calls ``register`` at import
time of its models module, and the engine looks types up here by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatherly.core.exceptions import ValidationFailed


@dataclass(frozen=True)
class RecordType:
    """A kind of record the engine can secure.

    ``model`` is None for organization-owned types (BUs, users, teams, roles): they have no
    owner, so only the levels none and organization mean anything (reference §1.3).
    ``setting`` marks an organization-owned type that holds installation settings (the
    Teams connection, say): nobody reads it by default, marketing administrators manage it.
    """

    name: str
    label: str
    model: Any = None
    setting: bool = False
    plural: str = ""  # how messages name the type as a whole ("contacts")

    @property
    def noun(self) -> str:
        """One record, as a sentence names it ("this contact")."""
        return f"this {self.label[0].lower()}{self.label[1:]}"

    @property
    def nouns(self) -> str:
        """The type as a whole, as a sentence names it ("contacts")."""
        return self.plural or f"{self.label[0].lower()}{self.label[1:]}s"

    @property
    def organization_owned(self) -> bool:
        """True when records of this type have no owner and no owning BU."""
        return self.model is None


_REGISTRY: dict[str, RecordType] = {}


def register(
    name: str, label: str, model: Any = None, *, setting: bool = False, plural: str = ""
) -> RecordType:
    """Register a record type (idempotent for the same model)."""
    record_type = RecordType(name=name, label=label, model=model, setting=setting, plural=plural)
    existing = _REGISTRY.get(name)
    if existing is not None and existing.model is not model:
        raise RuntimeError(f"record type {name!r} registered twice with different models")
    _REGISTRY[name] = record_type
    return record_type


def get(name: str, *, field: str = "record_type") -> RecordType:
    """Look up a record type or fail with a validation error naming the field."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValidationFailed(
            f"unknown record type {name!r}; known types: {known}", field=field
        ) from None


def all_types() -> list[RecordType]:
    """Every registered type, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def owned_types() -> list[RecordType]:
    """The user-or-team-owned types (those with an owner and an owning BU)."""
    return [t for t in all_types() if not t.organization_owned]


# ------------------------------------------------------------------ hooks
# What a domain must do when a directory change moves its records, or when the organisation
# is set up, without the directory importing the domain: contacts re-key their matching
# keys (SPEC B8) after a user or a team moves BU with its records, or after BU scoping is
# turned on or off.
OWNERS_MOVING = "owners_moving"  # fn(db, *, owner_type, owner_id): records about to follow
OWNERS_MOVED = "owners_moved"  # fn(db, *, owner_type, owner_id): records followed their owner
SCOPING_CHANGED = "scoping_changed"  # fn(db): BU scoping was turned on or off
DEFAULTS = "defaults"  # fn(db): make the rows every installation starts with

_HOOKS: dict[str, list[Callable[..., None]]] = {}


def on(event: str, fn: Callable[..., None]) -> None:
    """Run ``fn`` when ``event`` fires (registering the same function twice runs it once)."""
    hooks = _HOOKS.setdefault(event, [])
    if fn not in hooks:
        hooks.append(fn)


def fire(event: str, db: Any, **kwargs: Any) -> None:
    """Run every function registered for ``event``, in the caller's transaction."""
    for fn in _HOOKS.get(event, ()):
        fn(db, **kwargs)


register("business_unit", "Business unit")
register("user", "User")
register("team", "Team")
register("security_role", "Security role")


def display_name(record: Any) -> str:
    """What a record is called on a page: its name, else the person's name or email, else
    its id."""
    name = getattr(record, "name", None) or getattr(record, "display_name", None)
    if not name:
        first, last = getattr(record, "first_name", ""), getattr(record, "last_name", "")
        name = f"{first or ''} {last or ''}".strip() or getattr(record, "email", None)
    return str(name or f"#{record.id}")
