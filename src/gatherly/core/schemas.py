"""The base of every API input model (unknown fields refused, strings trimmed, no NUL
bytes) and the normalisers every domain's inputs share."""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, field_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class StrictModel(BaseModel):
    """Input model: extra fields are an error and text may not carry NUL characters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it for every backend alike.
        if _has_nul(value):
            raise ValueError("text may not contain NUL characters")
        return value


def normalize_email(value: str) -> str:
    """Validate an address (syntax only, no DNS) and return it trimmed and case-folded."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.casefold()
