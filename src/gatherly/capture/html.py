"""A form's fields as plain HTML (no JavaScript), the same for the hosted page, the preview
and the embed snippet a marketer pastes into any website."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from gatherly.capture.models import MarketingForm

HONEYPOT = "website"  # a field people never see and bots fill in
TOKEN = "_token"  # noqa: S105 - the name of the field carrying the signed form token

_ENV = Environment(autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
_FORM = _ENV.from_string(
    """\
<form method="post" action="{{ action }}" class="gatherly-form" accept-charset="utf-8">
  <input type="hidden" name="{{ token_name }}" value="{{ token }}">
{% if page_id %}
  <input type="hidden" name="_page" value="{{ page_id }}">
{% endif %}
  <div style="position:absolute;left:-10000px" aria-hidden="true">
    <label>Leave this empty <input type="text" name="{{ honeypot }}" tabindex="-1" autocomplete="off"></label>
  </div>
{% if errors.get("form") %}
  <p class="gatherly-error" role="alert">{{ errors["form"] }}</p>
{% endif %}
{% for f in fields %}
  <p class="gatherly-field">
{% set fid = "g-" ~ form_id ~ "-" ~ f.key | replace(".", "-") %}
{% if f.type == "checkbox" %}
    <label for="{{ fid }}"><input type="checkbox" id="{{ fid }}" name="{{ f.key }}" value="yes"{% if values.get(f.key) %} checked{% endif %}{% if f.required %} required{% endif %}> {{ f.label }}</label>
{% else %}
    <label for="{{ fid }}">{{ f.label }}{% if f.required %} *{% endif %}</label><br>
{% if f.type == "textarea" %}
    <textarea id="{{ fid }}" name="{{ f.key }}" maxlength="{{ f.max_length }}"{% if f.required %} required{% endif %}{% if f.placeholder %} placeholder="{{ f.placeholder }}"{% endif %}>{{ values.get(f.key, "") }}</textarea>
{% elif f.type == "select" %}
    <select id="{{ fid }}" name="{{ f.key }}"{% if f.required %} required{% endif %}>
      <option value="">Choose…</option>
{% for option in f.options %}
      <option{% if values.get(f.key) == option %} selected{% endif %}>{{ option }}</option>
{% endfor %}
    </select>
{% else %}
    <input type="{{ {"email": "email", "tel": "tel"}.get(f.type, "text") }}" id="{{ fid }}" name="{{ f.key }}" value="{{ values.get(f.key, "") }}" maxlength="{{ f.max_length }}"{% if f.required %} required{% endif %}{% if f.placeholder %} placeholder="{{ f.placeholder }}"{% endif %}{% if f.type == "email" %} autocomplete="email"{% endif %}>
{% endif %}
{% endif %}
{% if f.help %}
    <br><small>{{ f.help }}</small>
{% endif %}
{% if errors.get(f.key) %}
    <br><span class="gatherly-error" id="{{ fid }}-error">{{ errors[f.key] }}</span>
{% endif %}
  </p>
{% endfor %}
{% for c in consents %}
  <p class="gatherly-consent">
    <label><input type="checkbox" name="consent.{{ c.key }}" value="yes"{% if values.get("consent." ~ c.key) %} checked{% endif %}{% if c.required %} required{% endif %}> {{ c.text }}</label>
{% if errors.get("consent." ~ c.key) %}
    <br><span class="gatherly-error">{{ errors["consent." ~ c.key] }}</span>
{% endif %}
  </p>
{% endfor %}
  <p><button type="submit">{{ submit_label }}</button></p>
</form>
"""
)


def render(
    form: MarketingForm,
    *,
    action: str,
    token: str,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    page_id: int | None = None,
) -> Markup:
    """The form as HTML posting to ``action`` with its signed ``token``; ``values`` and
    ``errors`` refill it after a refused submission."""
    # The template escapes every value (autoescape on): its output is safe HTML.
    return Markup(  # noqa: S704
        _FORM.render(
            action=action,
            token=token,
            token_name=TOKEN,
            honeypot=HONEYPOT,
            form_id=form.id,
            page_id=page_id,
            fields=form.fields,
            consents=form.consents,
            submit_label=form.submit_label or "Submit",
            values=values or {},
            errors=errors or {},
        )
    )
