"""Validation and normalisation of contact input."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gatherly.contact.schemas import ContactCreate, LeadCreate, normalize_country, normalize_email


def _field_of(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return ".".join(str(p) for p in exc.value.errors()[0]["loc"])


def test_email_is_trimmed_and_case_folded() -> None:
    assert normalize_email("  Anna.Schmidt@Example.COM ") == "anna.schmidt@example.com"
    assert ContactCreate(email="X@Y.example").email == "x@y.example"


@pytest.mark.parametrize("bad", ["no-at-sign", "a@", "@b.example", "a b@c.example", "a@b..example"])
def test_invalid_emails_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ContactCreate(email=bad)
    assert _field_of(exc) == "email"


def test_empty_email_means_no_email() -> None:
    assert ContactCreate(email="").email is None


@pytest.mark.parametrize(
    ("given", "code"), [("de", "DE"), ("DEU", "DE"), ("Germany", "DE"), ("japan", "JP")]
)
def test_country_accepts_codes_and_names(given: str, code: str) -> None:
    assert normalize_country(given) == code


def test_unknown_country_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactCreate(country="Atlantis")
    assert _field_of(exc) == "country"


@pytest.mark.parametrize("good", ["+49 30 1234567", "(555) 010-9999", "030/12345 x12"])
def test_phone_numbers_in_common_shapes_are_kept(good: str) -> None:
    assert ContactCreate(phone=good).phone == good


@pytest.mark.parametrize("bad", ["call me", "12", "+49 <script>"])
def test_phone_with_letters_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ContactCreate(phone=bad)
    assert _field_of(exc) == "phone"


def test_custom_properties_need_snake_case_names_and_scalar_values() -> None:
    assert ContactCreate(custom={"fav_color": "blue", "score": 3, "vip": True}).custom["score"] == 3
    with pytest.raises(ValidationError) as exc:
        ContactCreate(custom={"Fav Color": "blue"})
    assert _field_of(exc) == "custom"
    with pytest.raises(ValidationError):
        ContactCreate(custom={"nested": {"a": 1}})  # type: ignore[dict-item]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        ContactCreate(emial="typo@x.example")  # type: ignore[call-arg]
    assert _field_of(exc) == "emial"


def test_lead_status_is_one_of_the_known_values() -> None:
    assert LeadCreate(status="qualified").status == "qualified"
    with pytest.raises(ValidationError) as exc:
        LeadCreate(status="hot")  # type: ignore[arg-type]
    assert _field_of(exc) == "status"
