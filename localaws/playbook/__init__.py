"""An Ansible-style playbook engine: YAML tasks, each calling one idempotent module."""

from localaws.playbook.engine import default_reporter, list_tasks, load, run, validate
from localaws.playbook.model import ListedPlay, ListedTask, Play, Playbook, Task
from localaws.playbook.reporter import CollectingReporter, JsonReporter, TextReporter
from localaws.playbook.results import ItemResult, ModuleResult, RunResult, Status, TaskResult
from localaws.playbook.runner import Reporter, RunOptions

__all__ = [
    "CollectingReporter",
    "ItemResult",
    "JsonReporter",
    "ListedPlay",
    "ListedTask",
    "ModuleResult",
    "Play",
    "Playbook",
    "Reporter",
    "RunOptions",
    "RunResult",
    "Status",
    "Task",
    "TaskResult",
    "TextReporter",
    "default_reporter",
    "list_tasks",
    "load",
    "run",
    "validate",
]
