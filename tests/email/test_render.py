"""Rendering a message: the sandbox, sanitising, the text part, inlined CSS and links."""

from __future__ import annotations

import pytest

from gatherly.core.exceptions import ValidationFailed
from gatherly.email import render

CONTEXT = {"contact": {"first_name": "Ann", "company": "<b>Acme</b>"}, "unsubscribe_url": "u"}


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("{{ 'x' * 1000000 }}", "may not use *"),
        ("{{ 10 ** 100000 }}", "may not use **"),
        ("{{ '%20000000s' % 1 }}", "may not use %"),
        ("{{ 'x' | center(30000000) }}", "may not use the center filter"),
        ("{{ 'x' | indent(30000000) }}", "may not use the indent filter"),
        ("{{ '{:>20000000}'.format(1) }}", "may only call methods that read"),
        ("{{ contact.first_name.replace('A', 'AAAA') }}", "may only call methods that read"),
        ("{{ contact.update({'vip': 1}) }}", "may only call methods that read"),
        ("{{ range(10) | list }}", "may only call methods that read"),
        ("{% set s = 'x' %}{{ s }}", "may not use set"),
        ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}", "may not use macro"),
        ("{% for x in [1] recursive %}{{ loop(x) }}{% endfor %}", "recursive loops"),
        ("{% include 'x' %}", "may not use include"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ contact.first_name + 1 }}", "TypeError"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "may only call methods that read"),
        ("{% for %}", "line 1: "),
    ],
)
def test_a_template_that_fails_says_how_and_never_runs_away(source: str, said: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        render.render(source, CONTEXT, field="html")
    assert said in raised.value.message
    assert raised.value.field == "html"


def test_contact_data_is_escaped_in_html_and_not_in_text() -> None:
    assert (
        render.render("{{ contact.company }}", CONTEXT, field="html") == "&lt;b&gt;Acme&lt;/b&gt;"
    )
    assert render.render("{{ contact.company }}", CONTEXT, field="text") == "<b>Acme</b>"
    assert render.render("Hi {{ contact.nick | default('there') }}", CONTEXT, field="text") == (
        "Hi there"
    )


def test_sanitising_keeps_layout_styles_and_templates_and_drops_what_runs() -> None:
    html = (
        '<table width="600" cellpadding="0"><tr><td bgcolor="#fff" style="padding:8px">'
        '<a href="{{ unsubscribe_url }}" target="_blank">u</a></td></tr></table>'
        '<img src="https://cdn.example/logo.png" alt="Logo" onerror="x()">'
        "<object data='x'></object><svg onload='x()'></svg><form action='/'></form>"
    )
    clean = render.sanitize_html(html)
    assert '<td bgcolor="#fff" style="padding:8px">' in clean
    assert '<a href="{{ unsubscribe_url }}" target="_blank">u</a>' in clean
    assert '<img src="https://cdn.example/logo.png" alt="Logo">' in clean
    for gone in ("onerror", "<object", "<svg", "onload", "<form"):
        assert gone not in clean


def test_the_document_inlines_css_and_hides_the_preheader() -> None:
    page = render.document(
        "<style>.cta { color: #f00 }</style><p class='cta'>Go</p>", preheader="Soon <b>"
    )
    assert page.startswith("<!DOCTYPE html>")
    assert '<p class="cta" style="color: #f00;">Go</p>' in page
    assert "display:none" in page
    assert "Soon &lt;b&gt;" in page


def test_the_text_part_keeps_every_link() -> None:
    text = render.text_from_html(
        '<h1>Autumn</h1><p>Join <a href="https://e.example/j">here</a>.</p><ul><li>A</li></ul>'
    )
    assert "[here](https://e.example/j)" in text
    assert "Autumn" in text
    assert "* A" in text


def test_links_are_checked_for_a_scheme_and_a_host() -> None:
    found = render.links('<a href=" https://a.example/x ">a</a><a name="n">b</a><a href="">c</a>')
    assert found == ["https://a.example/x", ""]
    assert render.bad_link("https://a.example/x") is None
    assert render.bad_link("mailto:a@b.example") is None
    assert render.bad_link("") == "(empty) is not an http(s) address"
    assert render.bad_link("ftp://a.example") == "ftp://a.example is not an http(s) address"


def test_what_a_message_may_do_still_works() -> None:
    source = (
        "{{ contact.first_name | default('there') | upper }} {{ contact.company | truncate(4) }}"
        "{% if contact.first_name.startswith('A') %} A{% endif %}"
        "{% for key, value in contact.custom | dictsort %} {{ key }}={{ value }}{% endfor %}"
        " {{ 'a' ~ contact.first_name }} {{ contact.custom.get('size', 0) + 1 }}"
    )
    context = {"contact": {"first_name": "Ann", "company": "Acme Corp", "custom": {"size": 2}}}
    assert render.render(source, context, field="text") == "ANN Acme Corp A size=2 aAnn 3"


def test_template_tags_pass_the_sanitiser_untouched() -> None:
    html = '{% if 1 < 2 %}<p title="{{ "a" }}">{{ x }}</p>{% endif %}tpl00n0x gatherlytag1x'
    assert render.sanitize_html(html) == html
    assert render.render(render.sanitize_html(html), {"x": "&"}, field="html") == (
        '<p title="a">&amp;</p>tpl00n0x gatherlytag1x'
    )


def test_css_that_runs_code_is_neutralised_in_styles_only() -> None:
    html = render.sanitize_html(
        "<style>p { background: url(javascript:alert(1)) } @import url(evil.css);"
        " .a { width: expression(alert(1)) }</style>"
        "<p style=\"background: url( 'vbscript:x' ); color: red\">a regular expression(s)</p>"
        '<div style="behavior: url(x.htc); -moz-binding: url(x.xml)">x</div>'
    )
    for code in (
        "javascript:",
        "vbscript:",
        "@import",
        "expression(alert",
        "behavior:",
        "-moz-binding:",
    ):
        assert code not in html, code
    assert "color: red" in html
    assert "a regular expression(s)" in html  # text is text: only CSS is touched
