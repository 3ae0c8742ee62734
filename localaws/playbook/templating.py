"""Jinja templating of task values, keeping native types.

A string that is exactly one `{{ expression }}` evaluates to the expression's
value, unchanged, so a variable holding the string "123" stays a string. Other
templates render through `NativeEnvironment`, where `"{{ 3 }}"` is the int 3.
Strings without `{{` or `{%` are plain values and are never rendered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.nativetypes import NativeEnvironment

# Filters and tests under which a missing variable is expected rather than an error.
_GUARD_FILTERS = frozenset({"default", "d"})
_GUARD_TESTS = frozenset({"defined", "undefined"})
_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y"})


class TemplateError(Exception):
    """A template failed to parse or render; the message names the cause."""


def _to_bool(value: Any) -> bool:
    """Convert `value` to a bool the way Ansible's `bool` filter does ("yes", "on", "1" are true)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    if isinstance(value, (int, float)):
        return value == 1
    return False


def _mandatory(value: Any, message: str | None = None) -> Any:
    """Return `value`, or raise when it is undefined."""
    if isinstance(value, jinja2.Undefined):
        raise jinja2.UndefinedError(message or f"mandatory variable is not defined: {value._undefined_name}")
    return value


def _to_json(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, sort_keys=sort_keys, default=str)


def _from_json(value: str) -> Any:
    return json.loads(value)


FILTERS: dict[str, Callable[..., Any]] = {
    "to_json": _to_json,
    "from_json": _from_json,
    "bool": _to_bool,
    "mandatory": _mandatory,
}


def _environment() -> NativeEnvironment:
    environment = NativeEnvironment(undefined=jinja2.StrictUndefined)
    # `default`, `int`, `lower`, `upper` and `join` are Jinja's own filters.
    environment.filters.update(FILTERS)
    return environment


ENVIRONMENT = _environment()
BUILTIN_NAMES = frozenset(ENVIRONMENT.globals)


def is_template(value: Any) -> bool:
    """Return whether `value` is a string that Jinja must render."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def contains_template(value: Any) -> bool:
    """Return whether `value`, or anything inside a list or dict in it, is a template."""
    return any(True for _ in template_strings(value))


def template_strings(value: Any) -> Iterator[str]:
    """Yield every template string inside `value`, through nested lists and dicts."""
    if is_template(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from template_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from template_strings(item)


def expression_template(expression: str) -> str:
    """Return the template that evaluates a bare expression, as `when` holds."""
    return "{{ " + expression + " }}"


@lru_cache(maxsize=4096)
def _parse(source: str) -> nodes.Template:
    try:
        return ENVIRONMENT.parse(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template syntax error in {source!r}: {error.message}") from None


@lru_cache(maxsize=4096)
def variables_used(source: str) -> frozenset[str]:
    """Return the names a template needs from its caller.

    Builtins such as `range` are left out, and so are names used only under
    `default` or tested with `is defined`, since those may be missing.
    """
    tree = _parse(source)
    undeclared = meta.find_undeclared_variables(tree)
    return frozenset(name for name in undeclared - BUILTIN_NAMES if not _only_guarded(tree, name))


def _only_guarded(tree: nodes.Template, name: str) -> bool:
    guarded: set[int] = set()
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        names = _GUARD_FILTERS if isinstance(node, nodes.Filter) else _GUARD_TESTS
        if node.name in names and isinstance(node.node, nodes.Name):
            guarded.add(id(node.node))
    uses = [node for node in tree.find_all(nodes.Name) if node.name == name and node.ctx == "load"]
    return bool(uses) and all(id(node) in guarded for node in uses)


def _single_expression(source: str) -> str | None:
    """Return the expression of a template that is exactly `{{ expression }}`, else None."""
    if not (source.startswith("{{") and source.endswith("}}")):
        return None
    inner = source[2:-2]
    # A leading or trailing - or + is whitespace control, which compile_expression would misread.
    if inner[:1] in "-+" or inner[-1:] in "-+":
        return None
    body = _parse(source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    return None if isinstance(body[0].nodes[0], nodes.TemplateData) else inner


def _check_defined(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


class Scope:
    """The variables visible to one task, resolved lazily.

    `values` are final (caller variables, registered results, `item`).
    `templates` are play and task vars, rendered on first use within this
    scope, so a var may refer to another var or to a registered result.
    """

    def __init__(self, values: Mapping[str, Any], templates: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._templates = {name: value for name, value in templates.items() if name not in self._values}
        self._resolved: dict[str, Any] = {}
        self._resolving: list[str] = []

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._templates

    def names(self) -> set[str]:
        """Return every variable name defined in this scope."""
        return set(self._values) | set(self._templates)

    def get(self, name: str) -> Any:
        """Return the value of `name`, rendering it first when it is a template var."""
        if name in self._values:
            return self._values[name]
        if name in self._resolved:
            return self._resolved[name]
        if name in self._resolving:
            chain = " -> ".join([*self._resolving[self._resolving.index(name):], name])
            raise TemplateError(f"variable {name!r} refers to itself ({chain}); rename one of them.")
        self._resolving.append(name)
        try:
            value = self.render(self._templates[name])
        finally:
            self._resolving.pop()
        self._resolved[name] = value
        return value

    def render(self, value: Any) -> Any:
        """Render every template inside `value`; lists and dicts are rendered item by item."""
        if isinstance(value, dict):
            return {key: self.render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not is_template(value):
            return value
        return self._render_string(value)

    def evaluate(self, expression: str) -> Any:
        """Return the value of a bare Jinja expression, as `when` holds."""
        return self._render_string(expression_template(expression))

    def _render_string(self, source: str) -> Any:
        context = {name: self.get(name) for name in variables_used(source) if name in self}
        for name in _guarded_names(source):
            if name in self:
                context[name] = self.get(name)
        try:
            expression = _single_expression(source)
            if expression is not None:
                compiled = ENVIRONMENT.compile_expression(expression, undefined_to_none=False)
                return _check_defined(compiled(context))
            return ENVIRONMENT.from_string(source).render(context)
        except jinja2.UndefinedError as error:
            raise TemplateError(f"undefined variable in {source!r}: {error.message}") from None
        except jinja2.TemplateError as error:
            raise TemplateError(f"template error in {source!r}: {error.message}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as error:
            raise TemplateError(f"template {source!r} failed: {type(error).__name__}: {error}") from None


@lru_cache(maxsize=4096)
def _guarded_names(source: str) -> frozenset[str]:
    """Return the names that `variables_used` leaves out for being under `default` or `is defined`."""
    tree = _parse(source)
    return frozenset(meta.find_undeclared_variables(tree) - BUILTIN_NAMES) - variables_used(source)

