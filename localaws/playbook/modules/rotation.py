"""The `secret_rotation` module: a Secrets Manager secret's rotation function and schedule.

On `aws` the policy is Secrets Manager's own, set with RotateSecret and RotateImmediately=False so
that configuring only schedules. MiniStack 1.5.33's RotateSecret ignores RotateImmediately and
rotates at once without the Lambda, so on `local` the module records the policy in the secret's
tags instead, where the toolkit's rotation driver reads it (`localaws.rotation.policy`).
On both targets the function gets a permission for secretsmanager.amazonaws.com to invoke it for
this secret.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.modules.lambda_function import ensure_invoke_permission, resolve_function_arn
from localaws.playbook.modules.secrets import describe_secret
from localaws.playbook.results import ModuleResult
from localaws.rotation.policy import DAYS_TAG, LAMBDA_TAG

KIND = "secret rotation"
PRINCIPAL = "secretsmanager.amazonaws.com"
# AutomaticallyAfterDays accepts 1 to 1000 days.
DAYS_RANGE = (1, 1000)


def statement_id(secret: str) -> str:
    """Name the invoke permission after the secret; statement ids allow letters, digits, - and _."""
    return "secretsmanager-" + re.sub(r"[^A-Za-z0-9_-]", "-", secret)


def current_policy(description: dict[str, Any], target: str) -> dict[str, Any]:
    """Return the policy as the module's arguments name it: enabled, lambda and days."""
    if target == "local":
        tags = _aws.tags_from_list(description.get("Tags"))
        days = tags.get(DAYS_TAG)
        return {"enabled": LAMBDA_TAG in tags, "lambda": tags.get(LAMBDA_TAG),
                "days": int(days) if days and days.isdigit() else None}
    rules = description.get("RotationRules") or {}
    return {"enabled": bool(description.get("RotationEnabled")),
            "lambda": description.get("RotationLambdaARN"),
            "days": rules.get("AutomaticallyAfterDays")}


@register
class SecretRotation(Module):
    """Configure or cancel the automatic rotation of a Secrets Manager secret."""

    name = "secret_rotation"
    arguments: ClassVar[dict[str, Argument]] = {
        "secret": Argument(str, required=True, help="Name or ARN of the secret."),
        "lambda_function": Argument(str, help="Name or ARN of the rotation function; required when present."),
        "days": Argument(int, help="Days between rotations, 1 to 1000; required when present."),
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        sm = context.client("secretsmanager")
        secret = arguments["secret"]
        target = context.target.name
        description = describe_secret(sm, secret)
        present = arguments.get("state", "present") == "present"

        if description is None or "DeletedDate" in description:
            if present and context.check_mode:
                # In check mode an earlier task that would create the secret has not run.
                return ModuleResult.changed(f"would configure {KIND} of {secret} once the secret exists",
                                            None, {"secret": secret, "days": arguments.get("days")})
            if present:
                return ModuleResult.failed(f"secret {secret} does not exist, so its rotation cannot be "
                                           "configured. Apply playbooks/secrets.yml first.")
            return ModuleResult.ok(f"secret {secret} does not exist, so it has no rotation")
        before = current_policy(description, target)
        if not present:
            return self._remove(sm, secret, before, target, context.check_mode)

        problem = self._validate(arguments)
        if problem is not None:
            return ModuleResult.failed(problem)
        lambda_client = context.client("lambda")
        function_arn = resolve_function_arn(lambda_client, arguments["lambda_function"])
        if function_arn is None:
            if not context.check_mode:
                return ModuleResult.failed(f"rotation function {arguments['lambda_function']} does not "
                                           "exist. Apply playbooks/functions.yml first.")
            function_arn = arguments["lambda_function"]
        after = {"enabled": True, "lambda": function_arn, "days": arguments["days"]}

        changes = _aws.Changes()
        for key in ("enabled", "lambda", "days"):
            if before[key] != after[key]:
                changes.add(key, before[key], after[key])
        permission_changed = function_arn.startswith("arn:") and ensure_invoke_permission(
            lambda_client, function_arn, statement_id(description["Name"]), PRINCIPAL,
            description["ARN"], context.check_mode)
        if permission_changed:
            changes.add("invoke_permission", None, PRINCIPAL)

        facts = {"secret": description["Name"], "lambda": function_arn, "days": arguments["days"]}
        if not changes:
            return ModuleResult.ok(f"{KIND} of {secret} is up to date", facts)
        if not context.check_mode and {"enabled", "lambda", "days"} & set(changes.after):
            self._configure(sm, secret, function_arn, arguments["days"], target)
        return _aws.changed_result(KIND, secret, changes, context.check_mode, facts)

    @staticmethod
    def _validate(arguments: dict[str, Any]) -> str | None:
        if not arguments.get("lambda_function"):
            return "lambda_function is missing: name the rotation function."
        days = arguments.get("days")
        if not isinstance(days, int) or not DAYS_RANGE[0] <= days <= DAYS_RANGE[1]:
            return f"invalid days {days!r}: expected an integer from {DAYS_RANGE[0]} to {DAYS_RANGE[1]}."
        return None

    @staticmethod
    def _configure(sm: Any, secret: str, function_arn: str, days: int, target: str) -> None:
        if target == "local":
            sm.tag_resource(SecretId=secret, Tags=_aws.tags_to_list({LAMBDA_TAG: function_arn,
                                                                     DAYS_TAG: str(days)}))
            return
        sm.rotate_secret(SecretId=secret, RotationLambdaARN=function_arn,
                         RotationRules={"AutomaticallyAfterDays": days}, RotateImmediately=False)

    @staticmethod
    def _remove(sm: Any, secret: str, before: dict[str, Any], target: str, check_mode: bool) -> ModuleResult:
        if not before["enabled"]:
            return ModuleResult.ok(f"{KIND} of {secret} is off")
        if not check_mode:
            if target == "local":
                sm.untag_resource(SecretId=secret, TagKeys=[LAMBDA_TAG, DAYS_TAG])
            else:
                sm.cancel_rotate_secret(SecretId=secret)
        return _aws.removed_result(KIND, secret, before, check_mode)
