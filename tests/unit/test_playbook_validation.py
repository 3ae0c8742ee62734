"""Validation finds every problem, located by file, line and task, before any module runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from localaws.errors import PlaybookError
from localaws.playbook import load, validate
from localaws.playbook.modules.base import REGISTRY, Argument, Module, ModuleContext
from localaws.playbook.results import ModuleResult
from tests.unit.test_playbook_fakes import (
    CALLS,
    fakes,  # noqa: F401 - pytest fixture
    run_text,
    write,
)

pytestmark = pytest.mark.usefixtures("fakes")


class FakeBucket(Module):
    """Stands in for the S3 bucket module when the real one is not registered."""

    name = "s3_bucket"
    arguments: ClassVar[dict[str, Argument]] = {"name": Argument(str, required=True)}

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        return ModuleResult.ok()


@pytest.fixture
def bucket_module() -> Iterator[None]:
    """Register a fake `s3_bucket` unless the real module is registered."""
    added = "s3_bucket" not in REGISTRY
    if added:
        REGISTRY["s3_bucket"] = FakeBucket
    yield
    if added:
        del REGISTRY["s3_bucket"]


def problems_of(path: Path, variables: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Return the problems that validation reports for `path`."""
    with pytest.raises(PlaybookError) as raised:
        validate(path, variables or {})
    return raised.value.problems


def one_problem(path: Path, variables: dict[str, Any] | None = None) -> str:
    problems = problems_of(path, variables)
    assert len(problems) == 1, problems
    return problems[0]


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Broken
          tasks:
            - name: Set
              fake_set: {key: a, value: [1, 2}
        """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4: YAML syntax error")


def test_duplicate_key_is_error(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Duplicate
          tasks:
            - name: Set
              fake_set: {key: a, key: b}
        """)
    assert "found duplicate key 'key'" in one_problem(path)


@pytest.mark.usefixtures("bucket_module")
def test_unknown_module_suggests_nearest(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Buckets
          tasks:
            - name: Create bucket
              s3_buckit: {name: data}
        """)
    problem = one_problem(path)
    assert problem == (f"{path}:4: task 'Create bucket': unknown module 's3_buckit'; "
                       "did you mean 's3_bucket'?")


STRUCTURE_CASES = [
    ("no module", """
        - name: Play
          tasks:
            - name: Nothing
              when: true
        """, ":3: task 'Nothing': the task has no module"),
    ("two modules", """
        - name: Play
          tasks:
            - name: Both
              fake_set: {key: a}
              fake_nocheck: {key: b}
        """, ":3: task 'Both': the task has more than one module (fake_set, fake_nocheck)"),
    ("unknown keyword", """
        - name: Play
          tasks:
            - name: Typo
              fake_set: {key: a}
              whne: true
        """, ":5: task 'Typo': unknown task keyword 'whne'; did you mean 'when'?"),
    ("play without tasks", """
        - name: Empty
          vars: {a: 1}
        """, ":1: play 'Empty' has no tasks"),
    ("unknown play keyword", """
        - name: Play
          hosts: localhost
          tasks:
            - name: Set
              fake_set: {key: a}
        """, ":2: unknown play keyword 'hosts'"),
    ("task without name", """
        - name: Play
          tasks:
            - fake_set: {key: a}
        """, ":3: a task needs a 'name'"),
    ("arguments not a mapping", """
        - name: Play
          tasks:
            - name: Free form
              fake_set: key=a
        """, ":4: task 'Free form': the arguments of module 'fake_set' must be a mapping"),
    ("when with braces", """
        - name: Play
          tasks:
            - name: Braces
              when: "{{ flag }}"
              fake_set: {key: a}
        """, ":4: task 'Braces': 'when' is an expression without braces; write when: flag"),
    ("unknown handler", """
        - name: Play
          tasks:
            - name: Notify
              fake_set: {key: a}
              notify: restat
          handlers:
            - name: restart
              fake_set: {key: b}
        """, ":5: task 'Notify': notified handler 'restat' not found in this play's handlers; "
             "did you mean 'restart'?"),
    ("not a list", """
        name: Play
        tasks: []
        """, ":1: a playbook must be a list of plays"),
    ("bad register", """
        - name: Play
          tasks:
            - name: Register
              register: my-result
              fake_set: {key: a}
        """, ":4: task 'Register': register name 'my-result' is invalid"),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in STRUCTURE_CASES],
                         ids=[case[0] for case in STRUCTURE_CASES])
def test_structure_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "site.yml", text)
    problem = one_problem(path)
    assert problem.startswith(str(path))
    assert expected in problem


ARGUMENT_CASES = [
    ("missing required", ["value: 1"],
     ":4: task 'Set': missing required argument 'key' of module 'fake_set'."),
    ("unknown argument", ["key: a", "valeu: 1"],
     ":6: task 'Set': unknown argument 'valeu' of module 'fake_set'; did you mean 'value'? "
     "(accepted: count, key, state, value)"),
    ("wrong type", ["key: a", "count: many"],
     ":6: task 'Set': argument 'count' must be int, got str 'many'."),
    ("bool for int", ["key: a", "count: true"],
     ":6: task 'Set': argument 'count' must be int, got bool True."),
    ("choices", ["key: a", "state: gone"],
     ":6: task 'Set': argument 'state' must be one of 'present', 'absent', got 'gone'."),
]


@pytest.mark.parametrize(("arguments", "expected"), [case[1:] for case in ARGUMENT_CASES],
                         ids=[case[0] for case in ARGUMENT_CASES])
def test_argument_errors(tmp_path: Path, arguments: list[str], expected: str) -> None:
    lines = "".join(f"        {argument}\n" for argument in arguments)
    path = tmp_path / "site.yml"
    path.write_text(f"- name: Play\n  tasks:\n    - name: Set\n      fake_set:\n{lines}", encoding="utf-8")
    assert one_problem(path) == f"{path}{expected}"


def test_templated_argument_not_type_checked_early(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          tasks:
            - name: Set
              fake_set: {key: a, count: "{{ number }}"}
        """)
    validate(path, {"number": 3})


def test_undefined_variable_names_file_line_task(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          tasks:
            - name: Set
              fake_set:
                key: a
                value: "{{ bucket_nmae }}"
        """)
    problem = one_problem(path, {"bucket_name": "data"})
    assert problem == (f"{path}:6: task 'Set': undefined variable 'bucket_nmae' in argument 'value'; "
                       "did you mean 'bucket_name'?")


def test_variable_registered_later(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Early
          tasks:
            - name: Use
              fake_set: {key: a, value: "{{ created.value }}"}
        - name: Late
          tasks:
            - name: Create
              register: created
              fake_set: {key: b, value: 1}
        """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4: task 'Use': undefined variable 'created' in argument 'value'")
    assert f"registered by task 'Create' ({path}:7), which runs later" in problem


def test_undefined_variable_through_vars(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          vars:
            arn: "arn:{{ account }}"
          tasks:
            - name: Set
              when: item != 'x'
              loop: [a]
              fake_set: {key: "{{ item }}", value: "{{ arn }}"}
        """)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:8: task 'Set': undefined variable 'account' in argument 'value', "
                              f"used through play var 'arn' ({path}:3)")


def test_item_outside_loop(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          tasks:
            - name: Set
              when: item == 'a'
              fake_set: {key: a}
        """)
    expected = "undefined variable 'item' in 'when'; 'item' is defined only in a task with 'loop'"
    assert expected in one_problem(path)


def test_self_referencing_var(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          vars:
            region: "{{ region }}"
          tasks:
            - name: Set
              fake_set: {key: "{{ region }}"}
        """)
    assert "variable 'region' refers to itself" in one_problem(path, {"region": "us-east-1"})


def test_guarded_names_are_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          tasks:
            - name: Set
              when: maybe is defined or other is undefined
              fake_set: {key: "{{ name | default('x') }}", value: "{{ range(3) | list }}"}
        """)
    validate(path, {})


def test_template_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          tasks:
            - name: Set
              fake_set: {key: "{{ a + }}"}
        """)
    problem = one_problem(path, {"a": 1})
    assert problem.startswith(f"{path}:4: task 'Set': template syntax error in '{{{{ a + }}}}'")


def test_import_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "- import_playbook: b.yml\n")
    write(tmp_path, "b.yml", "- import_playbook: a.yml\n")
    problem = one_problem(tmp_path / "a.yml")
    assert problem.startswith(f"{tmp_path / 'b.yml'}:1: import cycle: ")
    assert problem.endswith("a.yml. Remove one of these imports.")


def test_missing_import(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", "- import_playbook: nowhere.yml\n")
    assert "imported playbook" in one_problem(path)


def test_same_file_imported_twice_is_no_cycle(tmp_path: Path) -> None:
    write(tmp_path, "part.yml", """
        - name: Part
          tasks:
            - name: Set
              fake_set: {key: a}
        """)
    path = write(tmp_path, "site.yml", "- import_playbook: part.yml\n- import_playbook: part.yml\n")
    assert len(load(path).plays) == 2


def test_all_problems_in_one_error(tmp_path: Path) -> None:
    write(tmp_path, "other.yml", """
        - name: Other
          tasks:
            - name: Bad import
              fake_set: {key: a, colour: red}
        """)
    path = write(tmp_path, "site.yml", """
        - name: Play
          tasks:
            - name: Fine
              fake_set: {key: fine}
            - name: Unknown module
              fake_sett: {key: a}
            - name: Undefined
              fake_set: {key: "{{ nope }}"}
        - import_playbook: other.yml
        """)
    with pytest.raises(PlaybookError) as raised:
        run_text(path)
    message = str(raised.value)
    assert message.startswith(f"playbook {path} is invalid (3 errors); nothing was run.")
    assert f"{path}:6: task 'Unknown module': unknown module 'fake_sett'; did you mean 'fake_set'?" in message
    assert f"{path}:8: task 'Undefined': undefined variable 'nope'" in message
    assert f"{tmp_path / 'other.yml'}:4: task 'Bad import': unknown argument 'colour'" in message
    assert CALLS == []


def test_load_returns_structure(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Play
          vars: {a: 1}
          tasks:
            - name: Set
              tags: [x, y]
              notify: h
              register: out
              fake_set: {key: a}
          handlers:
            - name: h
              fake_set: {key: b}
        """)
    playbook = load(path)
    play = playbook.plays[0]
    task = play.tasks[0]
    assert play.vars == {"a": 1}
    assert task.module == "fake_set"
    assert task.arguments == {"key": "a"}
    assert task.tags == frozenset({"x", "y"})
    assert task.notify == ("h",)
    assert task.register == "out"
    assert task.location.line == 4
    assert task.argument_lines == {"key": 8}
    assert [handler.name for handler in play.handlers] == ["h"]
