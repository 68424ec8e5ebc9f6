"""Turning a message into what a contact receives: sanitised HTML, personalisation in a
sandbox, the plain-text part, inlined CSS, and the checks a message must pass (SPEC M).

Pure functions over text: no database, no network. A marketer's template runs in Jinja2's
``SandboxedEnvironment`` (no attribute access to internals, no imports), and the HTML is
cleaned with nh3 when saved, so no script or event handler ever reaches a recipient.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import css_inline
import nh3
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from jinja2 import Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from gatherly.core.exceptions import ValidationFailed

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


_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_PLACEHOLDER = re.compile(r"(tpl[0-9a-f]{16}n)(\d+)x")  # one pattern: compiled once


def sanitize_html(html: str) -> str:
    """The HTML with scripts, event handlers, forms, frames and javascript: links removed.

    A pasted full document keeps its content and its ``<style>`` blocks; the document
    wrapper (``<html>``, ``<head>``) is added again at send time. Template tags
    (``{{ unsubscribe_url }}``, ``{% if a < b %}``) pass through untouched, in text and in
    link targets: the sanitiser sees placeholders, and what the tags produce is sanitised
    again after rendering."""
    tags: list[str] = []
    mark = f"tpl{secrets.token_hex(8)}n"  # letters and digits: no sanitiser touches them

    def hide(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"{mark}{len(tags) - 1}x"

    hidden = _TEMPLATE_TAG.sub(hide, html)
    clean = nh3.clean(
        hidden,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        clean_content_tags={"script"},
        url_schemes=_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )

    def show(match: re.Match[str]) -> str:
        return tags[int(match.group(2))] if match.group(1) == mark else match.group(0)

    return _PLACEHOLDER.sub(show, _safe_css(clean))


# CSS that runs code or fetches more than an image in old clients: script URLs, IE's
# expression() and behaviors, Mozilla's bindings, and @import of another stylesheet.
_CSS_CODE = re.compile(
    r"url\(\s*['\"]?\s*(?:javascript|vbscript|data\s*:\s*text/html)[^)]*\)|expression\s*\(|"
    r"behavior\s*:|-moz-binding\s*:|@import\b",
    re.IGNORECASE,
)
_CSS_PLACES = re.compile(
    r'(<style[^>]*>)(.*?)(</style>)|(\sstyle=")([^"]*)(")', re.IGNORECASE | re.S
)


def _safe_css(html: str) -> str:
    """Neutralise code in ``<style>`` blocks and ``style`` attributes (and only there)."""

    def clean(match: re.Match[str]) -> str:
        start, body, end = (
            match.group(1, 2, 3) if match.group(1) is not None else match.group(4, 5, 6)
        )
        return f"{start}{_CSS_CODE.sub('/* removed */', body)}{end}"

    return _CSS_PLACES.sub(clean, html)


# What a template may call on text: reading and reshaping it, never padding or repeating it
# to a size of its own choosing (``center``, ``ljust``, ``format``, ``replace`` …).
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "endswith", "find", "isalnum", "isalpha", "isdigit",
        "islower", "isspace", "istitle", "isupper", "lower", "lstrip", "removeprefix",
        "removesuffix", "rfind", "rsplit", "rstrip", "split", "splitlines", "startswith",
        "strip", "swapcase", "title", "upper",
    }
)  # fmt: skip
# A message's template is a small language: output, conditions, loops over the data it is
# given, and filters that read or reshape text. Nothing in it can store a value, call a
# function of its own, or repeat a value to a size of its own choosing.
_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
        "float", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
        "min", "reject", "rejectattr", "reverse", "round", "safe", "select", "selectattr",
        "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate",
        "unique", "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
_REFUSED_NODES: dict[type[nodes.Node], str] = {
    nodes.Assign: "set",
    nodes.AssignBlock: "set",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Include: "include",
    nodes.Extends: "extends",
    nodes.Block: "block",
    nodes.FilterBlock: "filter",
    nodes.With: "with",
    nodes.Mul: "*",
    nodes.Pow: "**",
    nodes.Mod: "%",
}
MAX_REPEAT = 100_000
MAX_OUTPUT = 2_000_000  # characters a part of one message may render to


class _Env(ImmutableSandboxedEnvironment):
    """Jinja2's sandbox, immutable (a template cannot change the values it is given), whose
    undefined values render empty so ``| default("there")`` works, and where nothing a
    template does can build a value big enough to exhaust memory."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("text formatting with % is not allowed in a message")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("an exponent above 64 is not allowed in a message")
        if operator == "*":
            sized, times = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            sequence = isinstance(sized, str | list | tuple) and isinstance(times, int)
            if sequence and len(sized) * times > MAX_REPEAT:
                raise SecurityError(f"a value repeated beyond {MAX_REPEAT} is not allowed")
            numbers = isinstance(left, int) and isinstance(right, int)
            if numbers and max(abs(left), abs(right)) > 10**18:
                raise SecurityError("numbers that large are not allowed in a message")
        return super().call_binop(context, operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value) and attr not in _STR_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))


@functools.cache
def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = _Env(autoescape=autoescape, undefined=Undefined, auto_reload=False, cache_size=400)
    env.filters = {k: v for k, v in env.filters.items() if k in _FILTERS}
    env.globals.clear()  # range, namespace, lipsum, dict …: a message needs none of them
    return env


def _refusal(node: nodes.Node) -> str | None:
    """Why a template node is not allowed in a message, or None."""
    kind = _REFUSED_NODES.get(type(node))
    if kind is not None:
        return f"a message may not use {kind}"
    if isinstance(node, nodes.For) and node.recursive:
        return "a message may not use recursive loops"
    if isinstance(node, nodes.Filter) and node.name not in _FILTERS:
        return f"a message may not use the {node.name} filter"
    if isinstance(node, nodes.Call):
        method = node.node.attr if isinstance(node.node, nodes.Getattr) else None
        if method not in _STR_METHODS | _MAPPING_METHODS:
            return "a message may only call methods that read text or mappings"
    return None


def _parse(source: str, field: str) -> nodes.Template:
    env = _environment(field == "html")
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(f"line {exc.lineno}: {exc.message}", field=field) from None
    for node in tree.find_all(nodes.Node):
        why = _refusal(node)
        if why is not None:
            raise ValidationFailed(f"line {node.lineno}: {why}", field=field)
    return tree


@functools.lru_cache(maxsize=32)
def _compiled(source: str, field: str) -> Template:
    """A checked template compiled once (a send renders the same few for every recipient)."""
    return _environment(field == "html").from_string(_parse(source, field))


def check_template(source: str, field: str) -> set[str]:
    """The variables a template uses; ValidationFailed naming the field and line when it
    does not parse or uses a tag a message may not."""
    return set(meta.find_undeclared_variables(_parse(source, field)))


def render(source: str, context: Mapping[str, Any], *, field: str) -> str:
    """The template rendered for one recipient (HTML-escaped when ``field`` is ``html``).

    Raises ValidationFailed naming the field when the template fails (a sandbox refusal,
    a filter given the wrong type, an output beyond ``MAX_OUTPUT`` characters)."""
    template = _compiled(source, field)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise SecurityError(f"it renders to more than {MAX_OUTPUT:,} characters")
            out.append(chunk)
        return "".join(out)
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
