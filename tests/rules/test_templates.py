"""Templates fill in ticket fields and can do nothing else."""

import pytest

from bot.rules.templates import TemplateError, format_value, parse, render
from tests.factories import NOW, make_ticket


def test_placeholders_are_filled_with_plain_text_values():
    template = parse("{{ priority }} #{{ id }} by {{ requester }} ({{ tags }}) waited {{ unanswered_for }}")
    ticket = make_ticket(id=42, priority="high", requester="Ana", tags=["b", "a"],
                         last_customer_update_at="90m ago")
    assert template.render(template.values(ticket, NOW)) == "high #42 by Ana (a, b) waited 1h 30m"


def test_custom_fields_and_extra_names_are_available():
    template = parse("{{ custom.plan }} {{ rule }} {{ url }}")
    ticket = make_ticket(custom={"plan": "gold"}, url="https://x/1")
    assert template.render(template.values(ticket, NOW, {"rule": "R"})) == "gold R https://x/1"


@pytest.mark.parametrize(
    "text",
    [
        "{{ subject.__class__ }}",
        "{{ ticket._raw }}",
        "{{ subject | upper }}",
        "{{ __import__('os') }}",
        "{{ subject() }}",
        "{{ raw['password'] }}",
        "{{ 1 + 1 }}",
    ],
)
def test_expressions_filters_and_attribute_access_are_refused(text):
    with pytest.raises(TemplateError, match="is not a placeholder"):
        parse(text)


def test_unknown_fields_are_refused_with_a_suggestion():
    with pytest.raises(TemplateError, match="unknown field 'subjet' in template; did you mean 'subject'"):
        parse("{{ subjet }}")


def test_unbalanced_braces_are_refused():
    with pytest.raises(TemplateError, match="unbalanced"):
        parse("hello {{ subject }")


def test_template_text_is_never_evaluated_even_when_a_value_looks_like_a_template():
    template = parse("{{ subject }}")
    ticket = make_ticket(subject="{{ raw }} {% import os %}")
    assert template.render(template.values(ticket, NOW)) == "{{ raw }} {% import os %}"


def test_render_escapes_only_values_not_the_coordinators_text():
    assert render("*{{ subject }}*", {"subject": "<!channel>"}, escape=lambda s: s.replace("<", "&lt;")) == (
        "*&lt;!channel>*"
    )


def test_format_value_handles_empty_and_collections():
    assert format_value(None) == ""
    assert format_value(frozenset({"z", "a"})) == "a, z"
    assert format_value(2.25) == "2.2"
