"""Turning a message into what a contact receives: sanitised HTML, personalisation in a
sandbox, the plain-text part, inlined CSS, and the checks a message must pass (SPEC M).

Pure functions over text: no database, no network. A marketer's template runs in Jinja2's
``SandboxedEnvironment`` (no attribute access to internals, no imports), and the HTML is
cleaned with nh3 when saved, so no script or event handler ever reaches a recipient.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import css_inline
import nh3
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from jinja2 import TemplateSyntaxError, Undefined, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from gatherly.core.exceptions import ValidationFailed

UNSUBSCRIBE = "unsubscribe_url"  # the variable every ready message must use

# What an email may hold: layout tables, inline styles, a <style> block for CSS inlining,
# images and links; never scripts, forms, frames or event handlers.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup",
    "dd", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "li", "ol", "p", "pre", "s", "small", "span", "strong", "style", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"style", "class", "id", "align", "valign", "width", "height", "bgcolor", "dir",
          "lang", "title", "role", "border"},
    "a": {"href", "target", "name"},
    "img": {"src", "alt"},
    "table": {"cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "scope"},
    "font": {"color", "face", "size"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
}  # fmt: skip
_SCHEMES = {"http", "https", "mailto", "tel"}


def sanitize_html(html: str) -> str:
    """The HTML with scripts, event handlers, forms, frames and javascript: links removed.

    A pasted full document keeps its content and its ``<style>`` blocks; the document
    wrapper (``<html>``, ``<head>``) is added again at send time. Template expressions
    (``{{ unsubscribe_url }}``) survive, in text and in link targets."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        clean_content_tags={"script"},
        url_schemes=_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )


class _Env(SandboxedEnvironment):
    """A sandbox whose undefined values render empty, so ``| default("there")`` works, and
    where ``*`` and ``**`` cannot build a value big enough to exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("an exponent above 64 is not allowed in a message")
        if operator == "*":
            sized, times = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            sequence = isinstance(sized, str | list | tuple) and isinstance(times, int)
            if sequence and len(sized) * times > MAX_REPEAT:
                raise SecurityError(f"a value repeated beyond {MAX_REPEAT} is not allowed")
        return super().call_binop(context, operator, left, right)


MAX_REPEAT = 100_000


@functools.cache
def _environment(autoescape: bool) -> SandboxedEnvironment:
    return _Env(autoescape=autoescape, undefined=Undefined, auto_reload=False, cache_size=400)


def check_template(source: str, field: str) -> set[str]:
    """The variables a template uses; ValidationFailed naming the field and line when it
    does not parse."""
    env = _environment(field == "html")
    try:
        return set(meta.find_undeclared_variables(env.parse(source)))
    except TemplateSyntaxError as exc:
        raise ValidationFailed(f"line {exc.lineno}: {exc.message}", field=field) from None


def render(source: str, context: Mapping[str, Any], *, field: str) -> str:
    """The template rendered for one recipient (HTML-escaped when ``field`` is ``html``).

    Raises ValidationFailed naming the field when the template fails (a sandbox refusal,
    a filter given the wrong type)."""
    env = _environment(field == "html")
    try:
        return env.from_string(source).render(context)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(f"line {exc.lineno}: {exc.message}", field=field) from None
    except Exception as exc:  # a template may fail in any way: say how
        raise ValidationFailed(f"{type(exc).__name__}: {exc}", field=field) from None


def text_from_html(html: str) -> str:
    """The plain-text part made from the HTML: paragraphs, lists, and links as
    ``[text](url)`` so every link still works where HTML is not shown."""
    text = get_text(html, ParserConfig(display_links=True))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def document(html: str, *, preheader: str = "", title: str = "") -> str:
    """A full HTML document around a message body, with the preheader (the line inboxes
    show after the subject) hidden at the top, and the CSS inlined into each tag."""
    hidden = (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
        f"{nh3.clean_text(preheader)}</div>"
        if preheader
        else ""
    )
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{nh3.clean_text(title)}</title></head><body>{hidden}{html}</body></html>"
    )
    return str(css_inline.inline(page))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href is not None:
                self.found.append(href.strip())


def links(html: str) -> list[str]:
    """Every link target of the HTML, in order (duplicates kept)."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.found


def bad_link(url: str) -> str | None:
    """Why a link in a message is not one a recipient can follow, or None when it is."""
    if url.startswith(("mailto:", "tel:")):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"{url or '(empty)'} is not an http(s) address"
    if not parts.netloc or " " in url:
        return f"{url} has no host"
    return None


@dataclass(frozen=True)
class Problem:
    """One reason a message cannot become ready."""

    field: str
    message: str


def render_problem(source: str, context: Mapping[str, Any], field: str) -> Problem | None:
    """Why the template does not render for ``context`` (a sample contact), or None: a
    name it does not know (``{{ contatc.first_name }}``), or a failure while rendering."""
    try:
        unknown = check_template(source, field) - set(context)
    except ValidationFailed as exc:
        return Problem(field, exc.message)
    if unknown:
        names = ", ".join(sorted(unknown))
        known = ", ".join(sorted(context))
        return Problem(field, f"uses {names}, which a message does not have (it has {known})")
    try:
        render(source, context, field=field)
    except ValidationFailed as exc:
        return Problem(field, f"does not render for a sample contact: {exc.message}")
    return None
