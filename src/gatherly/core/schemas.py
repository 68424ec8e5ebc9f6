"""The base of every API input model (unknown fields refused, strings trimmed, no NUL
bytes) and the normalisers every domain's inputs share."""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator


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


def json_path(loc: tuple[int | str, ...]) -> str:
    """Where a problem is in a JSON document: ``responses[3].answers`` (``$`` for the top)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def first_problem(exc: ValidationError) -> str:
    """The first problem pydantic found, as ``path: what`` in plain words (the emulators'
    fixtures report this way). The message keeps its case after the first letter, so
    enum values read as the source spells them."""
    error = exc.errors()[0]
    kind = error["type"]
    if kind == "missing":
        problem = "missing"
    elif kind == "extra_forbidden":
        problem = "unknown property"
    elif kind == "value_error":
        problem = str(error["ctx"]["error"])
    else:
        message = str(error["msg"])
        problem = message[:1].lower() + message[1:]
    return f"{json_path(tuple(error['loc']))}: {problem}"
