"""The `log_group` module: a CloudWatch Logs group with its retention and tags."""

from __future__ import annotations

from typing import Any, ClassVar

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

KIND = "log group"
# The values PutRetentionPolicy accepts, from the CloudWatch Logs API reference.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                  2557, 2922, 3288, 3653)
# 0 stands for "never expire", which CloudWatch Logs represents as no retention policy.
NEVER_EXPIRE = 0


def find_log_group(logs: Any, name: str) -> dict[str, Any] | None:
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page.get("logGroups", []):
            if group["logGroupName"] == name:
                return dict(group)
    return None


def log_group_arn(group: dict[str, Any]) -> str:
    """Return the ARN without the `:*` suffix that `arn` carries, as tagging requires."""
    return str(group.get("logGroupArn") or group["arn"].removesuffix(":*"))


def read_tags(logs: Any, arn: str) -> dict[str, str]:
    return dict(logs.list_tags_for_resource(resourceArn=arn).get("tags", {}))


def compare_log_group(logs: Any, group: dict[str, Any], arguments: dict[str, Any]) -> _aws.Changes:
    """Read each property the arguments manage and collect those that differ."""
    changes = _aws.Changes()
    retention = arguments.get("retention_days")
    current_retention = group.get("retentionInDays", NEVER_EXPIRE)
    if retention is not None and current_retention != retention:
        changes.add("retention_days", current_retention, retention)

    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags is not None:
        current_tags = read_tags(logs, log_group_arn(group))
        if current_tags != tags:
            changes.add("tags", current_tags, tags)
    return changes


def set_retention(logs: Any, name: str, retention: int) -> None:
    if retention == NEVER_EXPIRE:
        logs.delete_retention_policy(logGroupName=name)
    else:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)


def apply_changes(logs: Any, group: dict[str, Any], changes: _aws.Changes) -> None:
    name = group["logGroupName"]
    if "retention_days" in changes:
        set_retention(logs, name, changes.after["retention_days"])
    if "tags" in changes:
        arn = log_group_arn(group)
        to_set, to_remove = _aws.tag_changes(changes.before["tags"], changes.after["tags"])
        if to_remove:
            logs.untag_resource(resourceArn=arn, tagKeys=to_remove)
        if to_set:
            logs.tag_resource(resourceArn=arn, tags=to_set)


@register
class LogGroup(Module):
    """Create, update or delete a CloudWatch Logs group with its retention and tags."""

    name = "log_group"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True, help="Log group name, such as `/aws/lambda/app-health`."),
        "retention_days": Argument(
            int, choices=(NEVER_EXPIRE, *RETENTION_DAYS),
            help="Days to keep log events, one of CloudWatch's allowed values, or 0 to keep them forever.",
        ),
        "tags": _aws.TAGS,
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        logs = context.client("logs")
        name = arguments["name"]
        retention = arguments.get("retention_days")
        if retention is not None and retention != NEVER_EXPIRE and retention not in RETENTION_DAYS:
            return ModuleResult.failed(f"invalid retention_days {retention}: expected 0 or one of "
                                       f"{', '.join(map(str, RETENTION_DAYS))}.")
        group = find_log_group(logs, name)

        if arguments.get("state", "present") == "absent":
            if group is None:
                return _aws.absent_result(KIND, name)
            if not context.check_mode:
                logs.delete_log_group(logGroupName=name)
            return _aws.removed_result(KIND, name, {"name": name}, context.check_mode, self._facts(group))

        if group is None:
            tags = _aws.normalize_tags(arguments.get("tags"))
            after: dict[str, Any] = {"name": name}
            if retention is not None:
                after["retention_days"] = retention
            if tags is not None:
                after["tags"] = tags
            facts: dict[str, Any] = {"name": name}
            if not context.check_mode:
                logs.create_log_group(logGroupName=name, **({"tags": tags} if tags else {}))
                if retention:
                    set_retention(logs, name, retention)
                created = find_log_group(logs, name)
                facts = self._facts(created) if created is not None else {"name": name}
            return _aws.created_result(KIND, name, after, context.check_mode, facts)

        facts = self._facts(group)
        changes = compare_log_group(logs, group, arguments)
        if not changes:
            return ModuleResult.ok(f"{KIND} {name} is up to date", facts)
        if not context.check_mode:
            apply_changes(logs, group, changes)
        return _aws.changed_result(KIND, name, changes, context.check_mode, facts)

    @staticmethod
    def _facts(group: dict[str, Any]) -> dict[str, Any]:
        return {"name": group["logGroupName"], "arn": log_group_arn(group)}
