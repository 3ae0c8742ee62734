"""The `kms_key` module: a symmetric KMS key found by its alias, with rotation and tags."""

from __future__ import annotations

from typing import Any, ClassVar

import botocore.exceptions

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

KIND = "KMS key"
# Limits of EnableKeyRotation's RotationPeriodInDays and ScheduleKeyDeletion's PendingWindowInDays.
ROTATION_DAYS = (90, 2560)
PENDING_WINDOW_DAYS = (7, 30)


def alias_name(alias: str) -> str:
    return alias if alias.startswith("alias/") else f"alias/{alias}"


def find_key(kms: Any, alias: str) -> dict[str, Any] | None:
    """Return the metadata of the key the alias points to, or None when the alias does not exist."""
    try:
        return dict(kms.describe_key(KeyId=alias)["KeyMetadata"])
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "NotFoundException":
            return None
        raise


def read_rotation(kms: Any, key_id: str) -> tuple[bool, int | None]:
    """Return whether automatic rotation is on and its period in days (None when off)."""
    status = kms.get_key_rotation_status(KeyId=key_id)
    enabled = bool(status.get("KeyRotationEnabled"))
    return enabled, status.get("RotationPeriodInDays") if enabled else None


def read_tags(kms: Any, key_id: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key_id):
        tags.update(_aws.tags_from_list(page.get("Tags"), "TagKey", "TagValue"))
    return tags


def desired_rotation(arguments: dict[str, Any]) -> dict[str, Any] | None:
    if arguments.get("rotation") is None:
        return None
    if not arguments["rotation"]:
        return {"enabled": False, "period_days": None}
    return {"enabled": True, "period_days": arguments.get("rotation_period_days") or 365}


def compare_key(kms: Any, key: dict[str, Any], arguments: dict[str, Any]) -> _aws.Changes:
    """Read each property the arguments manage and collect those that differ."""
    changes = _aws.Changes()
    key_id = key["KeyId"]
    pending_deletion = key.get("KeyState") == "PendingDeletion"
    if pending_deletion or not key.get("Enabled", True):
        changes.add("key_state", key.get("KeyState"), "Enabled")

    description = arguments.get("description")
    if description is not None and key.get("Description", "") != description:
        changes.add("description", key.get("Description", ""), description)

    rotation = desired_rotation(arguments)
    if rotation is not None:
        # KMS rejects GetKeyRotationStatus on a key pending deletion, so the rotation is set again
        # after the deletion is cancelled.
        if pending_deletion:
            changes.add("rotation", None, rotation)
        else:
            enabled, period = read_rotation(kms, key_id)
            current = {"enabled": enabled, "period_days": period}
            # moto 5.2.5 does not report RotationPeriodInDays, so a missing period is taken as matching.
            if period is None and enabled:
                current["period_days"] = rotation["period_days"]
            if current != rotation:
                changes.add("rotation", current, rotation)

    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags is not None:
        current_tags = read_tags(kms, key_id)
        if current_tags != tags:
            changes.add("tags", current_tags, tags)
    return changes


def apply_changes(kms: Any, key: dict[str, Any], changes: _aws.Changes) -> None:
    key_id = key["KeyId"]
    after = changes.after
    if "key_state" in changes:
        if key.get("KeyState") == "PendingDeletion":
            kms.cancel_key_deletion(KeyId=key_id)
        kms.enable_key(KeyId=key_id)
    if "description" in changes:
        kms.update_key_description(KeyId=key_id, Description=after["description"])
    if "rotation" in changes:
        if after["rotation"]["enabled"]:
            kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=after["rotation"]["period_days"])
        else:
            kms.disable_key_rotation(KeyId=key_id)
    if "tags" in changes:
        current = changes.before["tags"] or {}
        to_set, to_remove = _aws.tag_changes(current, after["tags"])
        if to_remove:
            kms.untag_resource(KeyId=key_id, TagKeys=to_remove)
        if to_set:
            kms.tag_resource(KeyId=key_id, Tags=_aws.tags_to_list(to_set, "TagKey", "TagValue"))


def create_key(kms: Any, alias: str, arguments: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"Description": arguments.get("description") or ""}
    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags:
        request["Tags"] = _aws.tags_to_list(tags, "TagKey", "TagValue")
    key = dict(kms.create_key(**request)["KeyMetadata"])
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    rotation = desired_rotation(arguments)
    if rotation is not None and rotation["enabled"]:
        kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=rotation["period_days"])
    return key


def validate(arguments: dict[str, Any], alias: str) -> str | None:
    """Return what is wrong with the arguments, or None."""
    if alias.startswith("alias/aws/"):
        return f"invalid alias {alias!r}: the alias/aws/ prefix is reserved for AWS managed keys."
    period = arguments.get("rotation_period_days") or 365
    if not ROTATION_DAYS[0] <= period <= ROTATION_DAYS[1]:
        return (f"invalid rotation_period_days {period}: expected {ROTATION_DAYS[0]} "
                f"to {ROTATION_DAYS[1]} days.")
    window = arguments.get("deletion_window_days") or PENDING_WINDOW_DAYS[0]
    if not PENDING_WINDOW_DAYS[0] <= window <= PENDING_WINDOW_DAYS[1]:
        return (f"invalid deletion_window_days {window}: expected {PENDING_WINDOW_DAYS[0]} "
                f"to {PENDING_WINDOW_DAYS[1]} days.")
    return None


@register
class KmsKey(Module):
    """Create, update or schedule the deletion of a symmetric KMS key, found by its alias."""

    name = "kms_key"
    arguments: ClassVar[dict[str, Argument]] = {
        "alias": Argument(str, required=True, help="Alias that names the key, such as `alias/app-secrets`."),
        "description": Argument(str, help="Key description."),
        "rotation": Argument(bool, help="Enable (true) or disable (false) automatic key rotation."),
        "rotation_period_days": Argument(int, default=365,
                                         help="Days between automatic rotations, 90 to 2560."),
        "tags": _aws.TAGS,
        "deletion_window_days": Argument(
            int, default=7,
            help="With `state: absent`, days (7 to 30) until KMS deletes the key. The alias goes at once.",
        ),
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        kms = context.client("kms")
        alias = alias_name(arguments["alias"])
        problem = validate(arguments, alias)
        if problem is not None:
            return ModuleResult.failed(problem)
        key = find_key(kms, alias)

        if arguments.get("state", "present") == "absent":
            if key is None or key.get("KeyState") == "PendingDeletion":
                return _aws.absent_result(KIND, alias)
            if not context.check_mode:
                kms.delete_alias(AliasName=alias)
                kms.schedule_key_deletion(KeyId=key["KeyId"],
                                          PendingWindowInDays=arguments.get("deletion_window_days") or 7)
            before = {"alias": alias, "key_id": key["KeyId"]}
            return _aws.removed_result(KIND, alias, before, context.check_mode, self._facts(key, alias))

        if key is None:
            after = {"alias": alias, "description": arguments.get("description") or "",
                     "rotation": desired_rotation(arguments),
                     "tags": _aws.normalize_tags(arguments.get("tags"))}
            after = {name: value for name, value in after.items() if value is not None}
            facts = {"alias": alias}
            if not context.check_mode:
                facts = self._facts(create_key(kms, alias, arguments), alias)
            return _aws.created_result(KIND, alias, after, context.check_mode, facts)

        facts = self._facts(key, alias)
        changes = compare_key(kms, key, arguments)
        if not changes:
            return ModuleResult.ok(f"{KIND} {alias} is up to date", facts)
        if not context.check_mode:
            apply_changes(kms, key, changes)
        return _aws.changed_result(KIND, alias, changes, context.check_mode, facts)

    @staticmethod
    def _facts(key: dict[str, Any], alias: str) -> dict[str, Any]:
        return {"key_id": key["KeyId"], "arn": key["Arn"], "alias": alias}
