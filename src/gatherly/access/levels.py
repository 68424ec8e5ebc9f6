"""Privileges, access levels and share rights (SPEC B2; reference bu-security §2.1–2.4)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Privilege(StrEnum):
    """What a role may do with a record type."""

    CREATE = "create"
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    APPEND = "append"
    APPEND_TO = "append_to"
    ASSIGN = "assign"
    SHARE = "share"


class Level(IntEnum):
    """Access depth, narrowest to broadest; levels nest (organization ⊇ … ⊇ user)."""

    NONE = 0
    USER = 1
    BUSINESS_UNIT = 2
    PARENT_CHILD = 3
    ORGANIZATION = 4

    @property
    def label(self) -> str:
        """The lower-case name used in the API and CLI."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int) -> Level:
        """Accept a level by name (``business_unit``) or number."""
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(level.label for level in cls)
            raise ValueError(f"unknown access level {value!r}; use one of {names}") from None


# Shares carry rights as a bit mask; Create is not shareable (reference §2.4).
SHARE_BITS: dict[Privilege, int] = {
    Privilege.READ: 1,
    Privilege.WRITE: 2,
    Privilege.DELETE: 4,
    Privilege.APPEND: 8,
    Privilege.APPEND_TO: 16,
    Privilege.ASSIGN: 32,
    Privilege.SHARE: 64,
}


def rights_mask(rights: list[Privilege] | set[Privilege]) -> int:
    """The bit mask for a set of shareable rights."""
    mask = 0
    for right in rights:
        if right not in SHARE_BITS:
            raise ValueError(f"{right.value} cannot be shared")
        mask |= SHARE_BITS[right]
    return mask


def rights_from_mask(mask: int) -> list[Privilege]:
    """The rights in a bit mask, in declaration order."""
    return [p for p, bit in SHARE_BITS.items() if mask & bit]
