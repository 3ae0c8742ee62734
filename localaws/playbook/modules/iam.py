"""The `iam_role` module: a role with its trust policy, inline policies, attached policies and tags."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import botocore.exceptions

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

KIND = "IAM role"


def get_role(iam: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(iam.get_role(RoleName=name)["Role"])
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "NoSuchEntity":
            return None
        raise


def read_inline_policies(iam: Any, name: str) -> dict[str, Any]:
    """Return the role's inline policies as a mapping of policy name to parsed document."""
    policies: dict[str, Any] = {}
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy_name in page.get("PolicyNames", []):
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            policies[policy_name] = _aws.parse_policy(document)
    return policies


def read_managed_policy_arns(iam: Any, name: str) -> list[str]:
    arns: list[str] = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        arns.extend(item["PolicyArn"] for item in page.get("AttachedPolicies", []))
    return sorted(arns)


def read_tags(iam: Any, name: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in iam.get_paginator("list_role_tags").paginate(RoleName=name):
        tags.update(_aws.tags_from_list(page.get("Tags")))
    return tags


def read_instance_profiles(iam: Any, name: str) -> list[str]:
    names: list[str] = []
    for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
        names.extend(item["InstanceProfileName"] for item in page.get("InstanceProfiles", []))
    return names


def inline_policies_differ(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    if current.keys() != desired.keys():
        return True
    return any(not _aws.policies_equal(current[name], desired[name]) for name in desired)


def compare_role(iam: Any, role: dict[str, Any], arguments: dict[str, Any]) -> _aws.Changes:
    """Read each property the arguments manage and collect those that differ."""
    changes = _aws.Changes()
    name = role["RoleName"]
    current_trust = _aws.parse_policy(role.get("AssumeRolePolicyDocument") or "{}")
    if not _aws.policies_equal(current_trust, arguments["trust_policy"]):
        changes.add("trust_policy", current_trust, arguments["trust_policy"])

    description = arguments.get("description")
    if description is not None and role.get("Description", "") != description:
        changes.add("description", role.get("Description", ""), description)

    inline = arguments.get("inline_policies")
    if inline is not None:
        current_inline = read_inline_policies(iam, name)
        if inline_policies_differ(current_inline, inline):
            changes.add("inline_policies", current_inline, inline)

    managed = arguments.get("managed_policy_arns")
    if managed is not None:
        current_managed = read_managed_policy_arns(iam, name)
        if current_managed != sorted(set(managed)):
            changes.add("managed_policy_arns", current_managed, sorted(set(managed)))

    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags is not None:
        current_tags = read_tags(iam, name)
        if current_tags != tags:
            changes.add("tags", current_tags, tags)
    return changes


def apply_changes(iam: Any, name: str, changes: _aws.Changes) -> None:
    before, after = changes.before, changes.after
    if "trust_policy" in changes:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(after["trust_policy"]))
    if "description" in changes:
        iam.update_role(RoleName=name, Description=after["description"])
    if "inline_policies" in changes:
        for policy_name, document in after["inline_policies"].items():
            if not _aws.policies_equal(before["inline_policies"].get(policy_name), document):
                iam.put_role_policy(RoleName=name, PolicyName=policy_name,
                                    PolicyDocument=json.dumps(document))
        for policy_name in before["inline_policies"].keys() - after["inline_policies"].keys():
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    if "managed_policy_arns" in changes:
        for arn in sorted(set(after["managed_policy_arns"]) - set(before["managed_policy_arns"])):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for arn in sorted(set(before["managed_policy_arns"]) - set(after["managed_policy_arns"])):
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    if "tags" in changes:
        to_set, to_remove = _aws.tag_changes(before["tags"], after["tags"])
        if to_remove:
            iam.untag_role(RoleName=name, TagKeys=to_remove)
        if to_set:
            iam.tag_role(RoleName=name, Tags=_aws.tags_to_list(to_set))


def create_role(iam: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"RoleName": name,
                               "AssumeRolePolicyDocument": json.dumps(arguments["trust_policy"])}
    if arguments.get("description") is not None:
        request["Description"] = arguments["description"]
    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags:
        request["Tags"] = _aws.tags_to_list(tags)
    role = dict(iam.create_role(**request)["Role"])
    for policy_name, document in (arguments.get("inline_policies") or {}).items():
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    for arn in sorted(set(arguments.get("managed_policy_arns") or [])):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return role


def delete_role(iam: Any, name: str) -> None:
    """Delete the role after removing what IAM requires gone first: policies and instance profiles."""
    for arn in read_managed_policy_arns(iam, name):
        iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy_name in page.get("PolicyNames", []):
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    for profile in read_instance_profiles(iam, name):
        iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=name)
    iam.delete_role(RoleName=name)


@register
class IamRole(Module):
    """Create, update or delete an IAM role with its trust policy, policies and tags."""

    name = "iam_role"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True, help="Role name."),
        "trust_policy": Argument(dict, help="Trust (assume role) policy document, required to create."),
        "inline_policies": Argument(
            dict, help="Inline policies as a mapping of name to document. When set, others are deleted.",
        ),
        "managed_policy_arns": Argument(
            list, help="ARNs of managed policies to attach. When set, others are detached.",
        ),
        "description": Argument(str, help="Role description."),
        "tags": _aws.TAGS,
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        iam = context.client("iam")
        name = arguments["name"]
        role = get_role(iam, name)

        if arguments.get("state", "present") == "absent":
            if role is None:
                return _aws.absent_result(KIND, name)
            if not context.check_mode:
                delete_role(iam, name)
            return _aws.removed_result(KIND, name, {"name": name}, context.check_mode, self._facts(role))

        if arguments.get("trust_policy") is None:
            return ModuleResult.failed(f"{KIND} {name}: trust_policy is missing. Add it, since "
                                       "creating or updating a role needs it.")
        if role is None:
            after = {key: arguments[key] for key in
                     ("trust_policy", "description", "inline_policies", "managed_policy_arns")
                     if arguments.get(key) is not None}
            tags = _aws.normalize_tags(arguments.get("tags"))
            if tags is not None:
                after["tags"] = tags
            facts: dict[str, Any] = {"name": name}
            if not context.check_mode:
                facts = self._facts(create_role(iam, name, arguments))
            return _aws.created_result(KIND, name, {"name": name, **after}, context.check_mode, facts)

        facts = self._facts(role)
        changes = compare_role(iam, role, arguments)
        if not changes:
            return ModuleResult.ok(f"{KIND} {name} is up to date", facts)
        if not context.check_mode:
            apply_changes(iam, name, changes)
        return _aws.changed_result(KIND, name, changes, context.check_mode, facts)

    @staticmethod
    def _facts(role: dict[str, Any]) -> dict[str, Any]:
        return {"name": role["RoleName"], "arn": role["Arn"], "role_id": role.get("RoleId")}
