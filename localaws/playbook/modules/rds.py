"""The `rds_instance` module: an RDS database instance, created, modified in place or deleted."""

from __future__ import annotations

from typing import Any, ClassVar

import botocore.exceptions

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import MASK, Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

KIND = "RDS instance"
WAIT_DELAY_SECONDS = 15
# Properties that ModifyDBInstance cannot change: a different value needs a new instance.
FIXED = {"engine": "Engine", "db_name": "DBName", "master_username": "MasterUsername"}
# Argument name, DescribeDBInstances field and ModifyDBInstance parameter of each modifiable property.
MODIFIABLE = (
    ("instance_class", "DBInstanceClass", "DBInstanceClass"),
    ("allocated_storage", "AllocatedStorage", "AllocatedStorage"),
)


def describe_instance(rds: Any, identifier: str) -> dict[str, Any] | None:
    try:
        instances = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "DBInstanceNotFound":
            return None
        raise
    return dict(instances[0]) if instances else None


def current_port(instance: dict[str, Any]) -> int | None:
    pending = instance.get("PendingModifiedValues") or {}
    if "Port" in pending:
        return int(pending["Port"])
    port = instance.get("Endpoint", {}).get("Port") or instance.get("DbInstancePort")
    return int(port) if port else None


def current_value(instance: dict[str, Any], field: str) -> Any:
    """Return a property, preferring a modification that RDS has accepted but not applied yet."""
    pending = instance.get("PendingModifiedValues") or {}
    return pending.get(field, instance.get(field))


def version_matches(current: str | None, desired: str) -> bool:
    """Tell whether `current` is `desired` or a minor version of it (`15.3` matches `15`)."""
    return current is not None and (current == desired or current.startswith(f"{desired}."))


def major_version(version: str) -> str:
    return version.split(".")[0]


def compare_instance(instance: dict[str, Any], arguments: dict[str, Any]) -> _aws.Changes:
    """Collect the modifiable properties that differ from the arguments."""
    changes = _aws.Changes()
    for argument, field, _ in MODIFIABLE:
        desired = arguments.get(argument)
        if desired is not None and current_value(instance, field) != desired:
            changes.add(argument, current_value(instance, field), desired)

    port = arguments.get("port")
    if port is not None and current_port(instance) != port:
        changes.add("port", current_port(instance), port)

    version = arguments.get("engine_version")
    current_version = current_value(instance, "EngineVersion")
    if version is not None and not version_matches(current_version, str(version)):
        changes.add("engine_version", current_version, str(version))

    managed = arguments.get("manage_master_user_password")
    current_managed = "MasterUserSecret" in instance
    if managed is not None and managed != current_managed:
        changes.add("manage_master_user_password", current_managed, managed)

    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags is not None:
        current_tags = _aws.tags_from_list(instance.get("TagList"))
        if current_tags != tags:
            changes.add("tags", current_tags, tags)
    return changes


def find_conflicts(instance: dict[str, Any], arguments: dict[str, Any], changes: _aws.Changes) -> list[str]:
    """Return the differences that ModifyDBInstance cannot apply."""
    conflicts = [
        f"{argument} is {instance.get(field)!r}, not {arguments[argument]!r}"
        for argument, field in FIXED.items()
        if arguments.get(argument) is not None and instance.get(field) != arguments[argument]
    ]
    if "allocated_storage" in changes and changes.after["allocated_storage"] < (
            changes.before["allocated_storage"] or 0):
        conflicts.append(f"allocated_storage can only grow, from {changes.before['allocated_storage']}")
    if changes.after.get("manage_master_user_password") is False and not arguments.get("master_password"):
        conflicts.append("manage_master_user_password false needs master_password to set instead")
    return conflicts


def modify_instance(rds: Any, instance: dict[str, Any], arguments: dict[str, Any],
                    changes: _aws.Changes) -> None:
    request: dict[str, Any] = {"DBInstanceIdentifier": instance["DBInstanceIdentifier"],
                               "ApplyImmediately": True}
    for argument, _, parameter in MODIFIABLE:
        if argument in changes:
            request[parameter] = changes.after[argument]
    if "port" in changes:
        request["DBPortNumber"] = changes.after["port"]
    if "engine_version" in changes:
        request["EngineVersion"] = changes.after["engine_version"]
        before = changes.before["engine_version"]
        if before is None or major_version(before) != major_version(changes.after["engine_version"]):
            request["AllowMajorVersionUpgrade"] = True
    if "manage_master_user_password" in changes:
        request["ManageMasterUserPassword"] = changes.after["manage_master_user_password"]
        if not changes.after["manage_master_user_password"]:
            request["MasterUserPassword"] = arguments["master_password"]
    if len(request) > 2:
        rds.modify_db_instance(**request)

    if "tags" in changes:
        arn = instance["DBInstanceArn"]
        to_set, to_remove = _aws.tag_changes(changes.before["tags"], changes.after["tags"])
        if to_remove:
            rds.remove_tags_from_resource(ResourceName=arn, TagKeys=to_remove)
        if to_set:
            rds.add_tags_to_resource(ResourceName=arn, Tags=_aws.tags_to_list(to_set))


def create_instance(rds: Any, identifier: str, arguments: dict[str, Any]) -> None:
    request: dict[str, Any] = {
        "DBInstanceIdentifier": identifier,
        "Engine": arguments.get("engine") or "postgres",
        "DBInstanceClass": arguments["instance_class"],
        "MasterUsername": arguments["master_username"],
        "AllocatedStorage": arguments["allocated_storage"],
    }
    optional = (("engine_version", "EngineVersion"), ("port", "Port"), ("db_name", "DBName"))
    for argument, parameter in optional:
        if arguments.get(argument) is not None:
            request[parameter] = arguments[argument]
    if arguments.get("manage_master_user_password"):
        request["ManageMasterUserPassword"] = True
    else:
        request["MasterUserPassword"] = arguments["master_password"]
    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags:
        request["Tags"] = _aws.tags_to_list(tags)
    rds.create_db_instance(**request)


def wait_for(rds: Any, waiter_name: str, identifier: str, timeout: int) -> None:
    rds.get_waiter(waiter_name).wait(
        DBInstanceIdentifier=identifier,
        WaiterConfig={"Delay": WAIT_DELAY_SECONDS, "MaxAttempts": max(1, timeout // WAIT_DELAY_SECONDS)},
    )


def missing_for_create(arguments: dict[str, Any]) -> list[str]:
    missing = [name for name in ("instance_class", "master_username", "allocated_storage")
               if arguments.get(name) is None]
    if not arguments.get("master_password") and not arguments.get("manage_master_user_password"):
        missing.append("master_password (or manage_master_user_password: true)")
    return missing


def created_view(identifier: str, arguments: dict[str, Any]) -> dict[str, Any]:
    names = ("engine", "engine_version", "instance_class", "port", "db_name", "master_username",
             "manage_master_user_password", "allocated_storage")
    view = {"identifier": identifier, **{name: arguments[name] for name in names
                                         if arguments.get(name) is not None}}
    view.setdefault("engine", "postgres")
    if arguments.get("master_password"):
        view["master_password"] = MASK
    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags is not None:
        view["tags"] = tags
    return view


@register
class RdsInstance(Module):
    """Create, modify or delete an RDS database instance."""

    name = "rds_instance"
    arguments: ClassVar[dict[str, Argument]] = {
        "identifier": Argument(str, required=True, help="DB instance identifier."),
        "engine": Argument(str, default="postgres", help="Database engine, fixed at creation."),
        "engine_version": Argument(str, help="Engine version, such as `15` or `15.4`. Unset lets RDS pick."),
        "instance_class": Argument(str, help="Instance class, such as `db.t3.micro`, required to create."),
        "port": Argument(int, help="TCP port the database listens on."),
        "db_name": Argument(str, help="Name of the database created with the instance."),
        "master_username": Argument(str, help="Master user name, required to create."),
        "master_password": Argument(
            str, secret=True,
            help="Master user password, set at creation only because RDS cannot report it back.",
        ),
        "manage_master_user_password": Argument(
            bool, help="Let RDS keep the master password in Secrets Manager instead of master_password.",
        ),
        "allocated_storage": Argument(int, help="Storage in GiB, which can only grow. Required to create."),
        "tags": _aws.TAGS,
        "wait": Argument(bool, default=True, help="Wait until the instance is available or deleted."),
        "wait_timeout": Argument(int, default=1800, help="Seconds to wait before failing."),
        "final_snapshot_identifier": Argument(
            str, help="With `state: absent`, take a final snapshot under this name. Unset skips it.",
        ),
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        rds = context.client("rds")
        identifier = arguments["identifier"]
        timeout = arguments.get("wait_timeout") or 1800
        instance = describe_instance(rds, identifier)

        if arguments.get("state", "present") == "absent":
            return self._remove(rds, identifier, instance, arguments, context.check_mode)

        if instance is None:
            missing = missing_for_create(arguments)
            if missing:
                return ModuleResult.failed(f"{KIND} {identifier} does not exist and cannot be created: "
                                           f"missing {', '.join(missing)}.")
            facts: dict[str, Any] = {"identifier": identifier}
            if not context.check_mode:
                create_instance(rds, identifier, arguments)
                if arguments.get("wait", True):
                    wait_for(rds, "db_instance_available", identifier, timeout)
                created = describe_instance(rds, identifier)
                facts = self._facts(created or {"DBInstanceIdentifier": identifier})
            return _aws.created_result(KIND, identifier, created_view(identifier, arguments),
                                       context.check_mode, facts)

        changes = compare_instance(instance, arguments)
        conflicts = find_conflicts(instance, arguments, changes)
        if conflicts:
            return ModuleResult.failed(f"{KIND} {identifier} cannot be modified in place: "
                                       f"{'; '.join(conflicts)}. Delete and recreate it, or change the "
                                       "arguments.")
        facts = self._facts(instance)
        if not changes:
            return ModuleResult.ok(f"{KIND} {identifier} is up to date", facts)
        if not context.check_mode:
            modify_instance(rds, instance, arguments, changes)
            if arguments.get("wait", True):
                wait_for(rds, "db_instance_available", identifier, timeout)
            modified = describe_instance(rds, identifier) or instance
            if "port" in changes and current_port(modified) != changes.after["port"]:
                failure = self._recreate_for_port(rds, identifier, arguments, context, timeout)
                if failure is not None:
                    return failure
                modified = describe_instance(rds, identifier) or modified
            facts = self._facts(modified)
        return _aws.changed_result(KIND, identifier, changes, context.check_mode, facts)

    @staticmethod
    def _recreate_for_port(rds: Any, identifier: str, arguments: dict[str, Any], context: ModuleContext,
                           timeout: int) -> ModuleResult | None:
        """Delete and re-create an emulator's instance whose port ModifyDBInstance left unchanged.

        MiniStack 1.5.33 and moto 5.2.5 accept DBPortNumber but keep the old port. On an
        emulator the instance is a record without data, so re-creating it loses nothing.
        On AWS the instance contains data, so the module fails instead.
        """
        if context.target.endpoint_url is None:
            return ModuleResult.failed(f"{KIND} {identifier} still reports its old port after "
                                       f"ModifyDBInstance set port {arguments['port']}. Check the "
                                       "instance in the RDS console.")
        missing = missing_for_create(arguments)
        if missing:
            return ModuleResult.failed(f"{KIND} {identifier} ignored the port change and cannot be "
                                       f"re-created with the new port: missing {', '.join(missing)}.")
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True,
                               DeleteAutomatedBackups=True)
        if arguments.get("wait", True):
            wait_for(rds, "db_instance_deleted", identifier, timeout)
        create_instance(rds, identifier, arguments)
        if arguments.get("wait", True):
            wait_for(rds, "db_instance_available", identifier, timeout)
        return None

    def _remove(self, rds: Any, identifier: str, instance: dict[str, Any] | None, arguments: dict[str, Any],
                check_mode: bool) -> ModuleResult:
        if instance is None or instance.get("DBInstanceStatus") == "deleting":
            return _aws.absent_result(KIND, identifier)
        if not check_mode:
            snapshot = arguments.get("final_snapshot_identifier")
            if snapshot:
                rds.delete_db_instance(DBInstanceIdentifier=identifier, FinalDBSnapshotIdentifier=snapshot)
            else:
                rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True,
                                       DeleteAutomatedBackups=True)
            if arguments.get("wait", True):
                wait_for(rds, "db_instance_deleted", identifier, arguments.get("wait_timeout") or 1800)
        before = {"identifier": identifier, "status": instance.get("DBInstanceStatus")}
        return _aws.removed_result(KIND, identifier, before, check_mode, self._facts(instance))

    @staticmethod
    def _facts(instance: dict[str, Any]) -> dict[str, Any]:
        endpoint = instance.get("Endpoint") or {}
        facts = {
            "identifier": instance["DBInstanceIdentifier"],
            "arn": instance.get("DBInstanceArn"),
            "endpoint_address": endpoint.get("Address"),
            "endpoint_port": endpoint.get("Port"),
            "status": instance.get("DBInstanceStatus"),
        }
        secret = instance.get("MasterUserSecret")
        if secret:
            facts["master_user_secret_arn"] = secret.get("SecretArn")
        return facts
