"""The `secret` module: a Secrets Manager secret holding a JSON object, maybe with a generated password."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import botocore.exceptions

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import MASK, Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

KIND = "secret"
DEFAULT_KMS_KEY = "alias/aws/secretsmanager"
# Limits of GetRandomPassword's PasswordLength and DeleteSecret's RecoveryWindowInDays.
PASSWORD_LENGTH = (1, 4096)
RECOVERY_WINDOW_DAYS = (7, 30)


def describe_secret(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(sm.describe_secret(SecretId=name))
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "ResourceNotFoundException":
            return None
        raise


def read_value(sm: Any, name: str) -> dict[str, Any] | None:
    """Return the current value as a JSON object, or None when it has no value or is not a JSON object."""
    try:
        text = sm.get_secret_value(SecretId=name).get("SecretString")
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "ResourceNotFoundException":
            return None
        raise
    try:
        value = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def current_version(description: dict[str, Any]) -> str | None:
    for version, stages in description.get("VersionIdsToStages", {}).items():
        if "AWSCURRENT" in stages:
            return str(version)
    return None


def masked(value: dict[str, Any] | None) -> dict[str, str] | None:
    return None if value is None else dict.fromkeys(value, MASK)


def changed_keys(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    before = before or {}
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def generate_password(sm: Any, options: dict[str, Any]) -> str:
    request: dict[str, Any] = {"PasswordLength": options.get("length") or 32}
    if options.get("exclude_characters"):
        request["ExcludeCharacters"] = options["exclude_characters"]
    return str(sm.get_random_password(**request)["RandomPassword"])


def validate(arguments: dict[str, Any]) -> str | None:
    """Return what is wrong with the arguments, or None."""
    options = arguments.get("generate_password")
    if options is not None:
        unknown = sorted(set(options) - {"key", "length", "exclude_characters"})
        if unknown:
            return (f"invalid generate_password option {unknown[0]!r}: expected key, length "
                    "or exclude_characters.")
        key = options.get("key")
        if not isinstance(key, str) or not key:
            return "generate_password.key is missing: name the JSON key that holds the password."
        if key in (arguments.get("value") or {}):
            return f"generate_password.key {key!r} is also a key of value: remove it from one of them."
        length = options.get("length") or 32
        if not isinstance(length, int) or not PASSWORD_LENGTH[0] <= length <= PASSWORD_LENGTH[1]:
            return (f"invalid generate_password.length {length!r}: expected an integer from "
                    f"{PASSWORD_LENGTH[0]} to {PASSWORD_LENGTH[1]}.")
    window = arguments.get("recovery_window_days")
    if window and not RECOVERY_WINDOW_DAYS[0] <= window <= RECOVERY_WINDOW_DAYS[1]:
        return (f"invalid recovery_window_days {window}: expected 0 (delete at once) or "
                f"{RECOVERY_WINDOW_DAYS[0]} to {RECOVERY_WINDOW_DAYS[1]} days.")
    return None


class ValuePlan:
    """The value a secret should hold, and whether a new password has to be generated for it."""

    def __init__(self, arguments: dict[str, Any], current: dict[str, Any] | None) -> None:
        options = arguments.get("generate_password")
        self.managed = arguments.get("value") is not None or options is not None
        self.value: dict[str, Any] = dict(arguments.get("value") or {})
        self.password_key: str | None = options["key"] if options else None
        self.password_options: dict[str, Any] = dict(options or {})
        # A password generated on an earlier run is kept, so only the other keys are compared.
        self.needs_password = False
        # Rotation owns these keys after creation, so a stored value wins over the argument's.
        for key in arguments.get("rotated_keys") or ():
            if current is not None and key in current:
                self.value[key] = current[key]
        if self.password_key is not None:
            if current is not None and self.password_key in current:
                self.value[self.password_key] = current[self.password_key]
            else:
                self.needs_password = True
                self.value[self.password_key] = None

    def differs_from(self, current: dict[str, Any] | None) -> bool:
        return self.managed and (self.needs_password or current != self.value)

    def resolve(self, sm: Any) -> dict[str, Any]:
        """Return the value to store, generating the password when one is needed."""
        if self.needs_password and self.password_key is not None:
            return {**self.value, self.password_key: generate_password(sm, self.password_options)}
        return self.value


def compare_secret(sm: Any, kms: Any, description: dict[str, Any], arguments: dict[str, Any],
                   plan: ValuePlan, current_value: dict[str, Any] | None) -> _aws.Changes:
    """Collect the managed properties that differ. The value appears with every entry masked."""
    changes = _aws.Changes()
    desired_description = arguments.get("description")
    if desired_description is not None and description.get("Description", "") != desired_description:
        changes.add("description", description.get("Description", ""), desired_description)

    kms_key = arguments.get("kms_key")
    current_key = description.get("KmsKeyId") or DEFAULT_KMS_KEY
    if kms_key is not None and not _aws.same_kms_key(kms, current_key, kms_key):
        changes.add("kms_key", current_key, kms_key)

    if plan.differs_from(current_value):
        changes.add("value", masked(current_value), masked(plan.value))

    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags is not None:
        current_tags = _aws.tags_from_list(description.get("Tags"))
        if current_tags != tags:
            changes.add("tags", current_tags, tags)
    return changes


def create_secret(sm: Any, name: str, arguments: dict[str, Any], plan: ValuePlan) -> dict[str, Any]:
    request: dict[str, Any] = {"Name": name}
    if plan.managed:
        request["SecretString"] = json.dumps(plan.resolve(sm))
    if arguments.get("description") is not None:
        request["Description"] = arguments["description"]
    if arguments.get("kms_key") is not None:
        request["KmsKeyId"] = arguments["kms_key"]
    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags:
        request["Tags"] = _aws.tags_to_list(tags)
    return dict(sm.create_secret(**request))


def apply_changes(sm: Any, name: str, arguments: dict[str, Any], plan: ValuePlan,
                  changes: _aws.Changes) -> None:
    update: dict[str, Any] = {}
    if "description" in changes:
        update["Description"] = arguments["description"]
    if "kms_key" in changes:
        update["KmsKeyId"] = arguments["kms_key"]
    if update:
        sm.update_secret(SecretId=name, **update)
    if "value" in changes:
        sm.put_secret_value(SecretId=name, SecretString=json.dumps(plan.resolve(sm)))
    if "tags" in changes:
        to_set, to_remove = _aws.tag_changes(changes.before["tags"], changes.after["tags"])
        if to_remove:
            sm.untag_resource(SecretId=name, TagKeys=to_remove)
        if to_set:
            sm.tag_resource(SecretId=name, Tags=_aws.tags_to_list(to_set))


def delete_secret(sm: Any, name: str, recovery_window_days: int) -> None:
    if recovery_window_days:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=recovery_window_days)
    else:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def secret_facts(description: dict[str, Any]) -> dict[str, Any]:
    return {"name": description["Name"], "arn": description["ARN"],
            "version_id": current_version(description), "kms_key_id": description.get("KmsKeyId")}


@register
class Secret(Module):
    """Create, update or delete a Secrets Manager secret whose value is a JSON object."""

    name = "secret"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True, help="Secret name, such as `app/dev/database`."),
        "value": Argument(dict, secret=True, help="Mapping stored as the secret's JSON value."),
        "generate_password": Argument(
            dict,
            help="Add a generated password to the value: `key` (JSON key to fill), `length` (default 32) "
                 "and `exclude_characters`. It is generated once and kept on later runs.",
        ),
        "kms_key": Argument(str, help="KMS key alias, id or ARN that encrypts the secret. Unset keeps it."),
        "rotated_keys": Argument(
            list, help="JSON keys that secret rotation changes, such as `password`: the value sets them "
                       "when they are missing, and a stored value is kept.",
        ),
        "description": Argument(str, help="Secret description."),
        "tags": _aws.TAGS,
        "recovery_window_days": Argument(
            int, default=7,
            help="With `state: absent`, days (7 to 30) the secret stays restorable. 0 deletes it at once.",
        ),
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        sm = context.client("secretsmanager")
        name = arguments["name"]
        problem = validate(arguments)
        if problem is not None:
            return ModuleResult.failed(problem)
        description = describe_secret(sm, name)

        if arguments.get("state", "present") == "absent":
            if description is None or "DeletedDate" in description:
                return _aws.absent_result(KIND, name)
            if not context.check_mode:
                delete_secret(sm, name, arguments.get("recovery_window_days") or 0)
            return _aws.removed_result(KIND, name, {"name": name}, context.check_mode,
                                       secret_facts(description))

        if description is None:
            return self._create(sm, name, arguments, context.check_mode)

        kms = context.client("kms")
        scheduled_for_deletion = "DeletedDate" in description
        if scheduled_for_deletion and not context.check_mode:
            # Secrets Manager rejects reading the value of a secret scheduled for deletion.
            sm.restore_secret(SecretId=name)
            description = describe_secret(sm, name) or description
        return self._update(sm, kms, name, arguments, description, context.check_mode, scheduled_for_deletion)

    @staticmethod
    def _create(sm: Any, name: str, arguments: dict[str, Any], check_mode: bool) -> ModuleResult:
        plan = ValuePlan(arguments, None)
        after: dict[str, Any] = {"name": name}
        for key in ("description", "kms_key"):
            if arguments.get(key) is not None:
                after[key] = arguments[key]
        if plan.managed:
            after["value"] = masked(plan.value)
        tags = _aws.normalize_tags(arguments.get("tags"))
        if tags is not None:
            after["tags"] = tags
        facts: dict[str, Any] = {"name": name}
        if not check_mode:
            created = create_secret(sm, name, arguments, plan)
            facts = secret_facts(describe_secret(sm, name) or {"Name": name, "ARN": created["ARN"]})
            facts["version_id"] = created.get("VersionId", facts["version_id"])
        return _aws.created_result(KIND, name, after, check_mode, facts)

    @staticmethod
    def _update(sm: Any, kms: Any, name: str, arguments: dict[str, Any], description: dict[str, Any],
                check_mode: bool, scheduled_for_deletion: bool) -> ModuleResult:
        # In check mode a secret scheduled for deletion stays unreadable, so its value counts as changed.
        current_value = None if "DeletedDate" in description else read_value(sm, name)
        plan = ValuePlan(arguments, current_value)
        changes = compare_secret(sm, kms, description, arguments, plan, current_value)
        if scheduled_for_deletion:
            changes.add("scheduled_for_deletion", True, False)
        facts = secret_facts(description)
        if not changes:
            return ModuleResult.ok(f"{KIND} {name} is up to date", facts)
        if not check_mode:
            apply_changes(sm, name, arguments, plan, changes)
            facts = secret_facts(describe_secret(sm, name) or description)
        message = _aws.changed_result(KIND, name, changes, check_mode, facts).message
        keys = [key for key in changed_keys(current_value, plan.value) if key != plan.password_key]
        if "value" in changes and keys:
            message += f" (keys {', '.join(keys)})"
        return ModuleResult.changed(message, changes.before, changes.after, facts)
