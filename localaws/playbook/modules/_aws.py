"""Helpers the AWS modules share: error codes, tags, policy documents, KMS key lookup and diffs."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from localaws.playbook.modules.base import Argument
from localaws.playbook.results import ModuleResult

STATE = Argument(str, default="present", choices=("present", "absent"),
                 help="`present` creates or updates the resource, `absent` removes it.")
TAGS = Argument(dict, help="Tags as a mapping of key to value. When set, tags not listed are removed.")


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def tags_from_list(tags: list[dict[str, str]] | None, key: str = "Key",
                   value: str = "Value") -> dict[str, str]:
    """Convert AWS's list of `{Key, Value}` pairs into a mapping."""
    return {item[key]: item.get(value, "") for item in tags or []}


def tags_to_list(tags: Mapping[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: str(name), value: str(tag_value)} for name, tag_value in tags.items()]


def normalize_tags(tags: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Return tags with string values, as AWS stores them, or None when tags are not managed."""
    if tags is None:
        return None
    return {str(name): str(value) for name, value in tags.items()}


def tag_changes(current: Mapping[str, str], desired: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Return the tags to set and the tag keys to remove to turn `current` into `desired`."""
    to_set = {name: value for name, value in desired.items() if current.get(name) != value}
    to_remove = sorted(name for name in current if name not in desired)
    return to_set, to_remove


# Policy elements whose value may be one string or a list of strings, with the same meaning.
_LIST_ELEMENTS = frozenset({"Action", "NotAction", "Resource", "NotResource"})


def parse_policy(document: str | Mapping[str, Any]) -> Any:
    """Return a policy document as parsed JSON, because IAM returns some documents URL-encoded."""
    if not isinstance(document, str):
        return document
    text = document.strip()
    if not text.startswith("{"):
        text = urllib.parse.unquote(text)
    return json.loads(text)


def _as_sorted_list(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return sorted(set(value))
    return value


def _normalize_statement(statement: Any) -> Any:
    if not isinstance(statement, dict):
        return statement
    result: dict[str, Any] = {}
    for key, value in statement.items():
        if key in _LIST_ELEMENTS:
            result[key] = _as_sorted_list(value)
        elif key in ("Principal", "NotPrincipal") and isinstance(value, dict):
            result[key] = {kind: _as_sorted_list(names) for kind, names in value.items()}
        else:
            result[key] = value
    return result


def normalize_policy(document: str | Mapping[str, Any] | None) -> Any:
    """Return a policy in a canonical form, so equal policies written differently compare equal.

    A single statement becomes a list, one-string actions, resources and
    principals become sorted lists, and statements are sorted, since IAM
    treats all of these forms alike.
    """
    if document is None:
        return None
    policy = parse_policy(document)
    if not isinstance(policy, dict):
        return policy
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    normalized = [_normalize_statement(statement) for statement in statements]
    return {**policy, "Statement": sorted(normalized, key=lambda item: json.dumps(item, sort_keys=True))}


def policies_equal(left: str | Mapping[str, Any] | None, right: str | Mapping[str, Any] | None) -> bool:
    return bool(normalize_policy(left) == normalize_policy(right))


def find_kms_key_arn(kms: Any, key: str) -> str | None:
    """Return the ARN of the KMS key that an alias, alias ARN, key id or key ARN names, or None."""
    try:
        return str(kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"])
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "NotFoundException":
            return None
        raise


def same_kms_key(kms: Any, current: str | None, desired: str | None) -> bool:
    """Tell whether two references (alias, alias ARN, key id or ARN) name the same KMS key."""
    if current == desired:
        return True
    if current is None or desired is None:
        return False
    current_arn = find_kms_key_arn(kms, current)
    return current_arn is not None and current_arn == find_kms_key_arn(kms, desired)


@dataclass
class Changes:
    """The managed properties that differ, as `before` and `after` views for the diff."""

    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, before: Any, after: Any) -> None:
        self.before[name] = before
        self.after[name] = after

    def __bool__(self) -> bool:
        return bool(self.after)

    def __contains__(self, name: str) -> bool:
        return name in self.after

    def names(self) -> str:
        return ", ".join(self.after)


def changed_result(kind: str, name: str, changes: Changes, check_mode: bool,
                   facts: dict[str, Any]) -> ModuleResult:
    """Build the result of an update that changed (or in check mode would change) `changes`."""
    verb = "would update" if check_mode else "updated"
    return ModuleResult.changed(f"{verb} {kind} {name}: {changes.names()}", changes.before, changes.after,
                                facts)


def created_result(kind: str, name: str, after: dict[str, Any], check_mode: bool,
                   facts: dict[str, Any]) -> ModuleResult:
    verb = "would create" if check_mode else "created"
    return ModuleResult.changed(f"{verb} {kind} {name}", {}, after, facts)


def removed_result(kind: str, name: str, before: dict[str, Any], check_mode: bool,
                   facts: dict[str, Any] | None = None) -> ModuleResult:
    verb = "would remove" if check_mode else "removed"
    return ModuleResult.changed(f"{verb} {kind} {name}", before, {}, facts)


def absent_result(kind: str, name: str) -> ModuleResult:
    return ModuleResult.ok(f"{kind} {name} does not exist")
