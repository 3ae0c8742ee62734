"""Templates keep native types, and the names they need are found before running."""

from __future__ import annotations

import pytest

from localaws.playbook.templating import Scope, TemplateError, variables_used

NAME_CASES = [
    ("{{ a }}", {"a"}),
    ("{{ a.b[c] }}-{{ d | default(e) }}", {"a", "c", "e"}),
    ("{{ x | default('none') }}", set()),
    ("{{ x is defined and x > 1 }}", {"x"}),
    ("{{ x is defined }}", set()),
    ("{% for i in items %}{{ i }}{% endfor %}", {"items"}),
    ("{{ range(3) | list }}", set()),
    ("{{ {'k': v} | to_json }}", {"v"}),
]


@pytest.mark.parametrize(("template", "expected"), NAME_CASES)
def test_variables_used(template: str, expected: set[str]) -> None:
    assert variables_used(template) == expected


RENDER_CASES = [
    ("{{ 3 }}", 3),
    ("{{ [1, 2] }}", [1, 2]),
    ("{{ number }}", 7),
    ("{{ digits }}", "0123"),
    ("{{ numeric }}", "42"),
    ("n={{ number }}", "n=7"),
    ("plain text", "plain text"),
    ("{{ 'a' if flag else 'b' }}", "a"),
    ({"nested": ["{{ number }}", "x"]}, {"nested": [7, "x"]}),
]


@pytest.mark.parametrize(("template", "expected"), RENDER_CASES)
def test_render_keeps_types(template: object, expected: object) -> None:
    scope = Scope({"number": 7, "digits": "0123", "numeric": "42", "flag": True}, {})
    assert scope.render(template) == expected


def test_vars_render_lazily() -> None:
    scope = Scope({"base": "x"}, {"full": "{{ base }}-{{ suffix }}", "suffix": "{{ 1 + 1 }}"})
    assert scope.render("{{ full }}") == "x-2"


def test_undefined_variable_raises() -> None:
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        Scope({}, {}).render("{{ missing }}")


def test_undefined_attribute_raises() -> None:
    with pytest.raises(TemplateError, match="has no attribute 'nope'"):
        Scope({"result": {"a": 1}}, {}).render("{{ result.nope }}")


def test_self_reference_raises() -> None:
    with pytest.raises(TemplateError, match="variable 'a' refers to itself"):
        Scope({}, {"a": "{{ b }}", "b": "{{ a }}"}).render("{{ a }}")


def test_when_expression() -> None:
    scope = Scope({"count": 2}, {})
    assert scope.evaluate("count > 1") is True
    assert scope.evaluate("count is even and count < 2") is False
