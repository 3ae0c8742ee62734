"""The `lambda_function` module: package a Python function and create or update it in Lambda.

The module also contains the Lambda helpers that `api_gateway` and `cognito_user_pool` use to
resolve function ARNs and grant services the right to invoke a function.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import botocore.exceptions

from localaws.errors import ConfigError, ServiceError
from localaws.playbook.modules._packaging import BuildInputs, Package, build_package, build_package_copy
from localaws.playbook.modules.base import MASK, Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

READY_TIMEOUT_SECONDS = 300.0
READY_POLL_SECONDS = 0.5
# IAM needs a few seconds before Lambda can assume a role created just before the function.
ROLE_PROPAGATION_SECONDS = 30.0
SECRET_KEY_PATTERN = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)
URL_PASSWORD_PATTERN = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# Each managed configuration property: (argument name, Lambda API field).
CONFIG_FIELDS = (
    ("runtime", "Runtime"),
    ("handler", "Handler"),
    ("role", "Role"),
    ("timeout", "Timeout"),
    ("memory_size", "MemorySize"),
    ("description", "Description"),
)


def error_code(error: botocore.exceptions.ClientError) -> str:
    """Return the AWS error code of a failed call."""
    return str(error.response.get("Error", {}).get("Code", ""))


def get_function(client: Any, name: str) -> dict[str, Any] | None:
    """Return `get_function`'s output for `name`, or None when the function does not exist."""
    try:
        return dict(client.get_function(FunctionName=name))
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def resolve_function_arn(client: Any, function: str) -> str | None:
    """Return the ARN of a function given by name or ARN, or None when a named function does not exist."""
    if function.startswith("arn:"):
        return function
    found = get_function(client, function)
    if found is None:
        return None
    return str(found["Configuration"]["FunctionArn"])


def invoke_statement(client: Any, function_arn: str, statement_id: str) -> dict[str, Any] | None:
    """Return the resource policy statement `statement_id` of a function, or None if it has none."""
    try:
        policy = json.loads(client.get_policy(FunctionName=function_arn)["Policy"])
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    for statement in policy.get("Statement", []):
        if statement.get("Sid") == statement_id:
            return dict(statement)
    return None


def statement_matches(statement: dict[str, Any] | None, principal: str, source_arn: str) -> bool:
    """Return whether a policy statement allows `principal` to invoke the function from `source_arn`."""
    if statement is None:
        return False
    granted = statement.get("Principal")
    service = granted.get("Service") if isinstance(granted, dict) else granted
    condition = statement.get("Condition", {}).get("ArnLike", {})
    granted_source = condition.get("AWS:SourceArn") or condition.get("aws:SourceArn")
    return bool(service == principal and granted_source == source_arn)


def grant_invoke(client: Any, function_arn: str, statement_id: str, principal: str, source_arn: str,
                 replace: bool) -> None:
    """Allow `principal` to invoke a function from `source_arn`, replacing an outdated statement first."""
    if replace:
        try:
            client.remove_permission(FunctionName=function_arn, StatementId=statement_id)
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
    client.add_permission(FunctionName=function_arn, StatementId=statement_id,
                          Action="lambda:InvokeFunction", Principal=principal, SourceArn=source_arn)


def ensure_invoke_permission(client: Any, function_arn: str, statement_id: str, principal: str,
                             source_arn: str, check_mode: bool) -> bool:
    """Grant `principal` invoke rights on a function unless already granted. Return whether it changed."""
    statement = invoke_statement(client, function_arn, statement_id)
    if statement_matches(statement, principal, source_arn):
        return False
    if not check_mode:
        grant_invoke(client, function_arn, statement_id, principal, source_arn, replace=statement is not None)
    return True


def masked_environment(variables: dict[str, str]) -> dict[str, str]:
    """Return environment variables for display, masking secret-looking values and URL passwords."""
    masked = {}
    for key, value in sorted(variables.items()):
        if SECRET_KEY_PATTERN.search(key):
            masked[key] = MASK
        else:
            masked[key] = URL_PASSWORD_PATTERN.sub(rf"\g<1>{MASK}@", value)
    return masked


def current_view(function: dict[str, Any] | None, tags: dict[str, str] | None) -> dict[str, Any] | None:
    """Return the managed properties of an existing function, in argument names."""
    if function is None:
        return None
    config = function["Configuration"]
    view: dict[str, Any] = {argument: config.get(field) for argument, field in CONFIG_FIELDS}
    view["description"] = config.get("Description") or ""
    view["environment"] = dict((config.get("Environment") or {}).get("Variables") or {})
    view["code_sha256"] = config.get("CodeSha256")
    if tags is not None:
        view["tags"] = tags
    return view


def desired_view(arguments: dict[str, Any], code_sha256: str) -> dict[str, Any]:
    """Return the managed properties the arguments ask for, in the shape of `current_view`."""
    view = {argument: arguments[argument] for argument, _field in CONFIG_FIELDS}
    view["environment"] = {str(key): str(value) for key, value in arguments["environment"].items()}
    view["code_sha256"] = code_sha256
    if arguments["tags"] is not None:
        view["tags"] = {str(key): str(value) for key, value in arguments["tags"].items()}
    return view


def display(view: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return a view with environment values masked, for diffs."""
    if view is None:
        return None
    return {**view, "environment": masked_environment(view["environment"])}


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    """Drop the `aws:` tags that AWS sets itself and that callers cannot change."""
    return {key: value for key, value in tags.items() if not key.startswith("aws:")}


@register
class LambdaFunction(Module):
    """Create, update or delete a Python Lambda function built from a source folder."""

    name = "lambda_function"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True, help="function name"),
        "state": Argument(str, default="present", choices=("present", "absent")),
        "source": Argument(str, help="folder with the handler code, relative to the project folder"),
        "requirements": Argument(str, help="requirements file whose packages go into the zip"),
        "shared": Argument(
            list, default=(), help="extra package folders copied into the zip root, relative to the project"),
        "runtime": Argument(str, default="python3.11", help="Lambda runtime, e.g. python3.11"),
        "handler": Argument(str, help="handler as module.function, e.g. handler.lambda_handler"),
        "role": Argument(str, help="ARN of the execution role"),
        "environment": Argument(dict, default=None, help="environment variables of the function"),
        "timeout": Argument(int, default=3, help="timeout in seconds"),
        "memory_size": Argument(int, default=128, help="memory in MB"),
        "description": Argument(str, default=""),
        "tags": Argument(dict, default=None,
                         help="complete set of tags. Other tags are removed, and unset leaves tags alone"),
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        args = self.with_defaults(arguments)
        name = args["name"]
        client = context.client("lambda")
        function = get_function(client, name)
        if args["state"] == "absent":
            return self.remove(client, name, function, context.check_mode)

        self.validate(args)
        package = self.package(args, context)
        tags = self.read_tags(client, function) if args["tags"] is not None else None
        before = current_view(function, tags)
        after = desired_view(args, package.code_sha256)
        if before == after:
            return ModuleResult.ok(f"function {name} is up to date", self.facts(name, function, package))
        if context.check_mode:
            verb = "create" if function is None else "update"
            return ModuleResult.changed(f"would {verb} function {name}", display(before), display(after),
                                        self.facts(name, function, package))

        if function is None or before is None:
            function = self.create(client, args, package)
            message = f"created function {name}"
        else:
            function = self.update(client, args, package, function, before, after)
            message = f"updated {', '.join(self.changed_names(before, after))} of function {name}"
        return ModuleResult.changed(message, display(before), display(after),
                                    self.facts(name, function, package))

    def with_defaults(self, arguments: dict[str, Any]) -> dict[str, Any]:
        args = {key: arguments.get(key, spec.default) for key, spec in self.arguments.items()}
        args["shared"] = list(args["shared"] or ())
        args["environment"] = dict(args["environment"] or {})
        args["description"] = args["description"] or ""
        args["timeout"] = int(args["timeout"])
        args["memory_size"] = int(args["memory_size"])
        return args

    def validate(self, args: dict[str, Any]) -> None:
        missing = [key for key in ("source", "handler", "role") if not args[key]]
        if missing:
            raise ConfigError(f"lambda_function {args['name']}: missing {', '.join(missing)} "
                              "(required with state present)")

    def package(self, args: dict[str, Any], context: ModuleContext) -> Package:
        """Build the function's zip or reuse it. Check mode builds in a temporary folder only."""
        project = context.project_dir
        inputs = BuildInputs(
            source=project / args["source"],
            packages=tuple(project / folder for folder in args["shared"]),
            requirements=project / args["requirements"] if args["requirements"] else None,
            runtime=args["runtime"],
            target=context.target.name,
            build_python=context.build_python,
        )
        out_dir = context.build_dir / args["name"]
        if not context.check_mode:
            return build_package(inputs, out_dir)
        with tempfile.TemporaryDirectory(prefix="lambda-check-") as scratch:
            package = build_package_copy(inputs, out_dir, Path(scratch) / args["name"])
            # The scratch zip goes away with the folder, but its digest and CodeSha256 stay valid.
            return package

    def read_tags(self, client: Any, function: dict[str, Any] | None) -> dict[str, str]:
        if function is None:
            return {}
        arn = function["Configuration"]["FunctionArn"]
        return user_tags(dict(client.list_tags(Resource=arn).get("Tags") or {}))

    def changed_names(self, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        names = [key for key in after if before.get(key) != after[key]]
        return ["code" if name == "code_sha256" else name for name in names]

    def remove(self, client: Any, name: str, function: dict[str, Any] | None,
               check_mode: bool) -> ModuleResult:
        if function is None:
            return ModuleResult.ok(f"function {name} is absent", {"name": name})
        if not check_mode:
            client.delete_function(FunctionName=name)
        verb = "would delete" if check_mode else "deleted"
        return ModuleResult.changed(f"{verb} function {name}", {"name": name}, None, {"name": name})

    def create(self, client: Any, args: dict[str, Any], package: Package) -> dict[str, Any]:
        request: dict[str, Any] = {
            "FunctionName": args["name"],
            "Runtime": args["runtime"],
            "Handler": args["handler"],
            "Role": args["role"],
            "Code": {"ZipFile": package.zip_path.read_bytes()},
            "Timeout": args["timeout"],
            "MemorySize": args["memory_size"],
            "Description": args["description"],
            "Environment": {"Variables": desired_view(args, "")["environment"]},
            "PackageType": "Zip",
        }
        if args["tags"]:
            request["Tags"] = {str(key): str(value) for key, value in args["tags"].items()}
        self.create_with_retry(client, request)
        return self.wait_until_ready(client, args["name"])

    def create_with_retry(self, client: Any, request: dict[str, Any]) -> None:
        """Call `create_function`, retrying while IAM has not yet made a new role assumable."""
        deadline = time.monotonic() + ROLE_PROPAGATION_SECONDS
        while True:
            try:
                client.create_function(**request)
                return
            except botocore.exceptions.ClientError as error:
                message = str(error.response.get("Error", {}).get("Message", ""))
                retry = error_code(error) == "InvalidParameterValueException" and "assume" in message
                if not retry or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def update(self, client: Any, args: dict[str, Any], package: Package, function: dict[str, Any],
               before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        name = args["name"]
        arn = function["Configuration"]["FunctionArn"]
        self.wait_until_ready(client, name)
        if before.get("code_sha256") != after["code_sha256"]:
            client.update_function_code(FunctionName=name, ZipFile=package.zip_path.read_bytes())
            self.wait_until_ready(client, name)

        changes: dict[str, Any] = {field: after[argument] for argument, field in CONFIG_FIELDS
                                   if before.get(argument) != after[argument]}
        if before.get("environment") != after["environment"]:
            changes["Environment"] = {"Variables": after["environment"]}
        if changes:
            client.update_function_configuration(FunctionName=name, **changes)
            self.wait_until_ready(client, name)

        if "tags" in after and before.get("tags") != after["tags"]:
            self.update_tags(client, arn, before.get("tags") or {}, after["tags"])
        return dict(client.get_function(FunctionName=name))

    def update_tags(self, client: Any, arn: str, current: dict[str, str], desired: dict[str, str]) -> None:
        stale = sorted(set(current) - set(desired))
        if stale:
            client.untag_resource(Resource=arn, TagKeys=stale)
        changed = {key: value for key, value in desired.items() if current.get(key) != value}
        if changed:
            client.tag_resource(Resource=arn, Tags=changed)

    def wait_until_ready(self, client: Any, name: str) -> dict[str, Any]:
        """Poll until the function is Active and its last update Successful, then return `get_function`."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            function = dict(client.get_function(FunctionName=name))
            config = function["Configuration"]
            state = config.get("State", "Active")
            update_status = config.get("LastUpdateStatus", "Successful")
            if state == "Failed" or update_status == "Failed":
                reason = (config.get("LastUpdateStatusReason") or config.get("StateReason")
                          or "no reason given")
                raise ServiceError(f"Lambda function {name} failed to deploy: {reason}")
            if state == "Active" and update_status == "Successful":
                return function
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"Lambda function {name} is still {state}/{update_status} after "
                    f"{READY_TIMEOUT_SECONDS:.0f} s. Check the function's state in Lambda and run again."
                )
            time.sleep(READY_POLL_SECONDS)

    def facts(self, name: str, function: dict[str, Any] | None, package: Package) -> dict[str, Any]:
        # In check mode before the first create, `arn` and `version` are None.
        config = (function or {}).get("Configuration", {})
        return {
            "name": name,
            "arn": config.get("FunctionArn"),
            "code_sha256": package.code_sha256,
            "version": config.get("Version"),
        }
