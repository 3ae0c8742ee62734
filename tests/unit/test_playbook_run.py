"""The engine runs tasks in order, reports each one, and stops at the first failure."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from localaws.errors import PlaybookError
from localaws.playbook import JsonReporter, RunOptions, Status, list_tasks, run
from localaws.playbook.reporter import use_color
from tests.unit.test_playbook_fakes import (
    CALLS,
    SECRET,
    STORE,
    called,
    context_factory,
    fakes,  # noqa: F401 - pytest fixture
    run_text,
    write,
)

pytestmark = pytest.mark.usefixtures("fakes")

BASIC = """
- name: Basics
  tasks:
    - name: Set a
      fake_set: {key: a, value: 1}
    - name: Set b
      fake_set: {key: b, value: "{{ greeting }}"}
    - name: Skip c
      when: false
      fake_set: {key: c, value: 3}
"""


def test_counts_and_store(tmp_path: Path) -> None:
    result, output = run_text(write(tmp_path, "site.yml", BASIC), {"greeting": "hello"})
    assert result.counts == {Status.OK: 0, Status.CHANGED: 2, Status.SKIPPED: 1, Status.FAILED: 0}
    assert STORE == {"a": 1, "b": "hello"}
    assert result.changed
    assert result.failed_task is None
    assert "RECAP ok=0 changed=2 skipped=1 failed=0" in output


def test_second_run_is_all_ok(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", BASIC)
    run_text(path, {"greeting": "hello"})
    result, output = run_text(path, {"greeting": "hello"})
    assert result.counts[Status.OK] == 2
    assert result.counts[Status.CHANGED] == 0
    assert not result.changed
    assert "ok=2 changed=0 skipped=1 failed=0" in output


def test_task_line_format(tmp_path: Path) -> None:
    _, output = run_text(write(tmp_path, "site.yml", BASIC), {"greeting": "hello"})
    lines = output.splitlines()
    assert lines[0] == f"PLAY [Basics] {tmp_path / 'site.yml'}:1"
    assert lines[1].startswith("changed  Set a (")
    assert lines[1].endswith("s): set a")
    assert lines[3].startswith("skipped  Skip c (")
    assert lines[3].endswith("condition is false: False")


def test_native_types_reach_module(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Types
          vars:
            names: [x, y]
          tasks:
            - name: Int
              fake_set: {key: int, value: "{{ 3 }}"}
            - name: List
              fake_set: {key: list, value: "{{ names }}"}
            - name: Digits stay a string
              fake_set: {key: digits, value: "{{ account }}"}
            - name: Mixed text
              fake_set: {key: mixed, value: "id-{{ account }}"}
        """)
    run_text(path, {"account": "123456789012"})
    assert STORE["int"] == 3
    assert STORE["list"] == ["x", "y"]
    assert STORE["digits"] == "123456789012"
    assert STORE["mixed"] == "id-123456789012"


def test_when_loop_and_register(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Flow
          tasks:
            - name: Set each
              loop: "{{ keys }}"
              when: item != 'skip'
              register: each
              fake_set: {key: "{{ item }}", value: "{{ item | upper }}"}
            - name: Set first
              register: first
              fake_set: {key: first, value: done}
            - name: Use registered
              when: first.changed and each.results | length == 3
              fake_set:
                key: summary
                value: "{{ first.value }} {{ each.results | map(attribute='status') | join(',') }}"
        """)
    result, output = run_text(path, {"keys": ["a", "skip", "b"]})
    assert STORE == {"a": "A", "b": "B", "first": "done", "summary": "done changed,skipped,changed"}
    assert result.results[0].status is Status.CHANGED
    statuses = [item.status for item in result.results[0].items]
    assert statuses == [Status.CHANGED, Status.SKIPPED, Status.CHANGED]
    assert "3 items: 2 changed, 1 skipped" in output
    assert "  skipped  item skip: condition is false" in output


def test_loop_over_literal_list(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Loop
          tasks:
            - name: Set each
              loop: [{name: one, value: 1}, {name: two, value: 2}]
              fake_set: {key: "{{ item.name }}", value: "{{ item.value }}"}
        """)
    result, _ = run_text(path)
    assert STORE == {"one": 1, "two": 2}
    assert [item.item for item in result.results[0].items] == ["one", "two"]


def test_vars_precedence_and_lazy_vars(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Vars
          vars:
            region: play-region
            label: "{{ region }}-{{ created.value }}"
          tasks:
            - name: Create
              register: created
              fake_set: {key: created, value: thing}
            - name: Task vars win
              vars:
                region: task-region
              fake_set: {key: label, value: "{{ label }}"}
            - name: Play vars win over caller
              fake_set: {key: region, value: "{{ region }}"}
        """)
    run_text(path, {"region": "caller-region"})
    assert STORE["label"] == "task-region-thing"
    assert STORE["region"] == "play-region"


FILTER_CASES = [
    ("{{ missing | default('fallback') }}", "fallback"),
    ("{{ {'a': 1} | to_json }}", '{"a": 1}'),
    ("{{ '{\"a\": [1, 2]}' | from_json }}", {"a": [1, 2]}),
    ("{{ 'yes' | bool }}", True),
    ("{{ 'off' | bool }}", False),
    ("{{ '42' | int }}", 42),
    ("{{ 'ABC' | lower }}", "abc"),
    ("{{ 'abc' | upper }}", "ABC"),
    ("{{ ['a', 'b'] | join('-') }}", "a-b"),
    ("{{ present | mandatory }}", "here"),
]


@pytest.mark.parametrize(("template", "expected"), FILTER_CASES)
def test_filters(tmp_path: Path, template: str, expected: object) -> None:
    path = write(tmp_path, "site.yml", f"""
        - name: Filters
          tasks:
            - name: Filter
              fake_set:
                key: out
                value: {json.dumps(template)}
        """)
    result, _ = run_text(path, {"present": "here"})
    assert result.failed_task is None
    assert STORE["out"] == expected


def test_mandatory_fails_on_undefined(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Filters
          tasks:
            - name: Mandatory
              fake_set: {key: out, value: "{{ settings.bucket | mandatory }}"}
        """)
    result, _ = run_text(path, {"settings": {}})
    assert result.failed_task is not None
    assert "mandatory variable is not defined: bucket" in result.failed_task.message
    assert CALLS == []


@pytest.mark.parametrize(("tty", "no_color", "expected"), [
    (True, None, True),
    (True, "1", False),
    (True, "", False),
    (False, None, False),
])
def test_color_only_on_tty_without_no_color(monkeypatch: pytest.MonkeyPatch, tty: bool, no_color: str | None,
                                            expected: bool) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(stream, "isatty", lambda: tty)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert use_color(stream) is expected


NOTIFY = """
- name: Handlers
  tasks:
    - name: Set a
      fake_set: {key: a, value: 1}
      notify: restart
    - name: Set b
      fake_set: {key: b, value: 2}
      notify: [restart, reload]
  handlers:
    - name: reload
      fake_set: {key: reloaded, value: "{{ 'yes' }}", state: absent}
    - name: restart
      fake_set: {key: restarts, value: "{{ restart_count }}"}
"""


def test_handler_runs_once_at_end(tmp_path: Path) -> None:
    result, output = run_text(write(tmp_path, "site.yml", NOTIFY), {"restart_count": 1})
    names = [task.task for task in result.results]
    assert names == ["Set a", "Set b", "reload", "restart"]
    assert [arguments["key"] for arguments in called()].count("restarts") == 1
    assert result.results[-1].handler
    assert "changed  handler restart" in output


def test_handler_not_run_when_nothing_changed(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", NOTIFY)
    run_text(path, {"restart_count": 1})
    CALLS.clear()
    result, _ = run_text(path, {"restart_count": 1})
    assert [task.task for task in result.results] == ["Set a", "Set b"]
    assert "restarts" not in [arguments["key"] for arguments in called()]


TAGGED = """
- name: Tags
  tasks:
    - name: Untagged
      fake_set: {key: untagged, value: 1}
    - name: Build
      tags: build
      fake_set: {key: build, value: 1}
    - name: Deploy
      tags: [deploy, slow]
      fake_set: {key: deploy, value: 1}
    - name: Always
      tags: always
      fake_set: {key: always, value: 1}
"""

TAG_CASES = [
    (frozenset(), frozenset(), ["untagged", "build", "deploy", "always"]),
    (frozenset({"build"}), frozenset(), ["build", "always"]),
    (frozenset({"deploy", "build"}), frozenset(), ["build", "deploy", "always"]),
    (frozenset(), frozenset({"slow"}), ["untagged", "build", "always"]),
    (frozenset({"build"}), frozenset({"always"}), ["build"]),
    (frozenset({"untagged"}), frozenset(), ["untagged", "always"]),
    (frozenset({"tagged"}), frozenset({"build"}), ["deploy", "always"]),
    (frozenset({"all"}), frozenset({"deploy"}), ["untagged", "build", "always"]),
]


@pytest.mark.parametrize(("tags", "skip_tags", "expected"), TAG_CASES)
def test_tags_select_tasks(tmp_path: Path, tags: frozenset[str], skip_tags: frozenset[str],
                           expected: list[str]) -> None:
    run_text(write(tmp_path, "site.yml", TAGGED), options=RunOptions(tags=tags, skip_tags=skip_tags))
    assert [arguments["key"] for arguments in called()] == expected


HANDLER_TAGS = """
- name: Handler tags
  tasks:
    - name: Build
      tags: build
      fake_set: {key: build, value: 1}
      notify: publish
    - name: Deploy
      tags: deploy
      fake_set: {key: deploy, value: 1}
      notify: restart
  handlers:
    - name: publish
      fake_set: {key: published, value: 1}
    - name: restart
      fake_set: {key: restarted, value: 1}
"""


def test_handler_follows_tagged_notifier(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", HANDLER_TAGS)
    run_text(path, options=RunOptions(tags=frozenset({"build"})))
    assert [arguments["key"] for arguments in called()] == ["build", "published"]


def test_start_at_skips_earlier_tasks_across_imports(tmp_path: Path) -> None:
    write(tmp_path, "first.yml", """
        - name: First
          tasks:
            - name: One
              fake_set: {key: one, value: 1}
            - name: Two
              fake_set: {key: two, value: 2}
        """)
    write(tmp_path, "second.yml", """
        - name: Second
          tasks:
            - name: Three
              fake_set: {key: three, value: 3}
        """)
    path = write(tmp_path, "site.yml", """
        - import_playbook: first.yml
        - import_playbook: second.yml
        """)
    result, _ = run_text(path, options=RunOptions(start_at="Two"))
    assert [task.task for task in result.results] == ["Two", "Three"]
    assert STORE == {"two": 2, "three": 3}


def test_start_at_unknown_name_lists_close_matches(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", BASIC)
    with pytest.raises(PlaybookError) as raised:
        run_text(path, {"greeting": "hi"}, RunOptions(start_at="Set bb"))
    assert "'Set bb' not found" in str(raised.value)
    assert "'Set b'" in str(raised.value)
    assert CALLS == []


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Check
          tasks:
            - name: Set a
              fake_set: {key: a, value: 1}
            - name: No check mode
              fake_nocheck: {key: nocheck}
            - name: Unknown
              register: built
              fake_unknown: {key: thing}
            - name: Uses unknown
              fake_set: {key: arn, value: "{{ built.arn }}"}
        """)
    result, output = run_text(path, options=RunOptions(check=True))
    assert STORE == {}
    assert called("fake_nocheck") == []
    assert all(check_mode for _, _, check_mode in CALLS)
    statuses = [task.status for task in result.results]
    assert statuses == [Status.CHANGED, Status.SKIPPED, Status.SKIPPED, Status.SKIPPED]
    assert "skipped  No check mode" in output
    assert "cannot predict in check mode" in result.results[1].message
    assert result.results[2].message == "cannot predict in check mode: depends on a build"
    assert "depends on 'built'" in result.results[3].message
    assert "(check mode: nothing was changed)" in output


def test_diff_output(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Diff
          tasks:
            - name: Set a
              fake_set: {key: a, value: {size: 1}}
        """)
    STORE["a"] = {"size": 0}
    _, output = run_text(path, options=RunOptions(diff=True))
    assert "--- before\n+++ after\n" in output
    assert "-  size: 0\n" in output
    assert "+  size: 1\n" in output


def test_no_diff_without_option(tmp_path: Path) -> None:
    _, output = run_text(write(tmp_path, "site.yml", BASIC), {"greeting": "hi"})
    assert "+++ after" not in output


FAILURES = [
    ("toolkit", "it broke"),
    ("runtime", "module 'fake_fail' raised RuntimeError: it broke"),
    ("result", "it broke"),
]


@pytest.mark.parametrize(("kind", "message"), FAILURES)
def test_failed_task_stops_run(tmp_path: Path, kind: str, message: str) -> None:
    path = write(tmp_path, "site.yml", f"""
        - name: Failing
          tasks:
            - name: Before
              fake_set: {{key: before, value: 1}}
            - name: Break
              fake_fail: {{kind: {kind}}}
              notify: after
            - name: After
              fake_set: {{key: after, value: 1}}
          handlers:
            - name: after
              fake_set: {{key: handler, value: 1}}
        """)
    result, output = run_text(path)
    failed = result.failed_task
    assert failed is not None
    assert failed.task == "Break"
    assert failed.message == message
    assert failed.line == 5
    assert STORE == {"before": 1}
    assert f"FAILED task 'Break' in play 'Failing' at {path}:5: {message}" in output
    assert "failed=1" in output


def test_runtime_type_error_fails_before_module(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", """
        - name: Types
          tasks:
            - name: Wrong count
              fake_set: {key: a, count: "{{ 'many' }}"}
        """)
    result, _ = run_text(path)
    assert result.failed_task is not None
    assert "argument 'count' must be int, got str 'many'" in result.failed_task.message
    assert CALLS == []


def test_list_tasks_runs_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", TAGGED)
    plays = list_tasks(path, RunOptions(tags=frozenset({"deploy"})))
    assert [task.name for task in plays[0].tasks] == ["Deploy", "Always"]
    assert plays[0].tasks[0].tags == ("deploy", "slow")
    result, output = run_text(path, options=RunOptions(list_tasks=True))
    assert result.results == []
    assert CALLS == []
    assert "  Deploy  TAGS: [deploy, slow]" in output
    assert "  Untagged  (" in output


def test_json_output_parses(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", BASIC)
    stream = io.StringIO()
    run(path, {"greeting": "hi"}, context_factory, RunOptions(json=True, diff=True), JsonReporter(stream))
    document = json.loads(stream.getvalue())
    assert [task["status"] for task in document["tasks"]] == ["changed", "changed", "skipped"]
    assert document["tasks"][0]["diff"] == {"before": {}, "after": {"a": 1}}
    assert document["tasks"][0]["line"] == 3
    assert document["recap"]["changed"] == 2
    assert document["recap"]["failed_task"] is None


def test_json_list_tasks_parses(tmp_path: Path) -> None:
    stream = io.StringIO()
    run(write(tmp_path, "site.yml", TAGGED), {}, context_factory, RunOptions(list_tasks=True),
        JsonReporter(stream))
    document = json.loads(stream.getvalue())
    names = [task["name"] for task in document["plays"][0]["tasks"]]
    assert names == ["Untagged", "Build", "Deploy", "Always"]


SECRET_PLAYBOOK = """
- name: Secrets
  tasks:
    - name: Store password
      fake_secret: {name: db, password: "{{ db_password }}"}
    - name: Echo it
      fake_set: {key: echo, value: "{{ db_password }}"}
    - name: Fail with it
      fake_fail: {message: "could not use {{ db_password }}"}
"""


@pytest.mark.parametrize("json_output", [False, True])
def test_secret_never_printed(tmp_path: Path, json_output: bool) -> None:
    path = write(tmp_path, "site.yml", SECRET_PLAYBOOK)
    stream = io.StringIO()
    options = RunOptions(diff=True, json=json_output)
    reporter = JsonReporter(stream) if json_output else None
    if reporter is None:
        result, output = run_text(path, {"db_password": SECRET}, options)
    else:
        result = run(path, {"db_password": SECRET}, context_factory, options, reporter)
        output = stream.getvalue()
    assert STORE["db"] == SECRET
    assert SECRET not in output
    assert "********" in output
    assert all(SECRET not in task.message and SECRET not in str(task.diff) for task in result.results)


def test_literal_secret_masked_in_validation_error(tmp_path: Path) -> None:
    path = write(tmp_path, "site.yml", f"""
        - name: Secrets
          tasks:
            - name: Wrong type
              fake_secret: {{name: db, password: [{SECRET}]}}
        """)
    with pytest.raises(PlaybookError) as raised:
        run_text(path)
    assert SECRET not in str(raised.value)
    assert "argument 'password' must be str, got list ********" in str(raised.value)


def test_imports_run_in_order(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path, "sub/inner.yml", """
        - name: Inner
          tasks:
            - name: Inner task
              fake_set: {key: inner, value: 1}
        """)
    write(tmp_path, "sub/middle.yml", """
        - name: Middle
          tasks:
            - name: Middle task
              fake_set: {key: middle, value: 1}
        - import_playbook: inner.yml
        """)
    path = write(tmp_path, "site.yml", """
        - name: First
          tasks:
            - name: First task
              fake_set: {key: first, value: 1}
        - import_playbook: sub/middle.yml
        - name: Last
          tasks:
            - name: Last task
              fake_set: {key: last, value: 1}
        """)
    result, _ = run_text(path)
    assert [arguments["key"] for arguments in called()] == ["first", "middle", "inner", "last"]
    assert result.results[2].path == tmp_path / "sub" / "inner.yml"
