"""The `api_gateway` module: a REST API whose routes proxy to Lambda functions, deployed to a stage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import botocore.exceptions

from localaws.errors import ConfigError
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.modules.lambda_function import (
    ensure_invoke_permission,
    error_code,
    resolve_function_arn,
)
from localaws.playbook.results import ModuleResult

HTTP_METHODS = ("ANY", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# Deployments this module creates carry the digest of their routes, so a later run can tell
# whether the stage already serves the requested routes.
DEPLOYMENT_PREFIX = "routes sha256:"
LAMBDA_API_VERSION = "2015-03-31"


@dataclass(frozen=True)
class Route:
    """One requested route: HTTP method, resource path and the ARN of the Lambda function behind it."""

    method: str
    path: str
    function: str
    function_arn: str | None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def parse_route(raw: Any, index: int) -> tuple[str, str, str]:
    """Validate one entry of `routes` and return its method, normalised path and function."""
    if not isinstance(raw, dict):
        raise ConfigError(f"routes[{index}] must be a mapping with path, method and function")
    missing = [key for key in ("path", "method", "function") if not raw.get(key)]
    if missing:
        raise ConfigError(f"routes[{index}] is missing {', '.join(missing)}")
    method = str(raw["method"]).upper()
    if method not in HTTP_METHODS:
        raise ConfigError(f"routes[{index}]: method {raw['method']!r} is invalid. "
                          f"Use one of {', '.join(HTTP_METHODS)}.")
    path = "/" + str(raw["path"]).strip("/")
    if "//" in path:
        raise ConfigError(f"routes[{index}]: path {raw['path']!r} has an empty segment")
    return method, path, str(raw["function"])


def segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def ancestor_paths(path: str) -> list[str]:
    """Return `path` and every resource path above it, root first, e.g. `/`, `/api`, `/api/auth`."""
    parts = segments(path)
    return ["/" + "/".join(parts[:depth]) for depth in range(len(parts) + 1)]


def integration_uri(region: str, function_arn: str) -> str:
    partition = function_arn.split(":")[1] if function_arn.count(":") >= 5 else "aws"
    return (f"arn:{partition}:apigateway:{region}:lambda:path/{LAMBDA_API_VERSION}/functions/"
            f"{function_arn}/invocations")


def routes_digest(routes: list[Route], region: str) -> str:
    """Return the SHA-256 over every route's method, path and integration URI."""
    listing = sorted([route.method, route.path, integration_uri(region, route.function_arn or route.function)]
                     for route in routes)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def find_api(client: Any, name: str) -> dict[str, Any] | None:
    """Return the REST API named `name`, or None. Raise ConfigError when several share the name."""
    matches: list[dict[str, Any]] = []
    for page in client.get_paginator("get_rest_apis").paginate():
        matches.extend(api for api in page.get("items", []) if api.get("name") == name)
    if len(matches) > 1:
        ids = ", ".join(api["id"] for api in matches)
        raise ConfigError(f"several REST APIs are named {name!r} ({ids}). Delete all but one.")
    return dict(matches[0]) if matches else None


def read_resources(client: Any, api_id: str) -> dict[str, dict[str, Any]]:
    """Return the API's resources by path."""
    resources: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("get_resources").paginate(restApiId=api_id):
        for resource in page.get("items", []):
            resources[resource["path"]] = dict(resource)
    return resources


def read_method(client: Any, api_id: str, resource_id: str, method: str) -> dict[str, Any] | None:
    try:
        return dict(client.get_method(restApiId=api_id, resourceId=resource_id, httpMethod=method))
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "NotFoundException":
            return None
        raise


def method_matches(found: dict[str, Any] | None, uri: str) -> bool:
    """Return whether a method has no authorization and a Lambda proxy integration to `uri`."""
    if found is None or found.get("authorizationType") != "NONE":
        return False
    integration = found.get("methodIntegration") or {}
    return bool(integration.get("type") == "AWS_PROXY" and integration.get("httpMethod") == "POST"
                and integration.get("uri") == uri)


def deployed_digest(client: Any, api_id: str, stage: str) -> str | None:
    """Return the route digest of the deployment the stage serves, or None if there is none."""
    try:
        deployment_id = client.get_stage(restApiId=api_id, stageName=stage).get("deploymentId")
        if not deployment_id:
            return None
        description = str(client.get_deployment(restApiId=api_id, deploymentId=deployment_id)
                          .get("description") or "")
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "NotFoundException":
            return None
        raise
    return description.removeprefix(DEPLOYMENT_PREFIX) if description.startswith(DEPLOYMENT_PREFIX) else None


@register
class ApiGateway(Module):
    """Create, update or delete a REST API whose routes are Lambda proxy integrations."""

    name = "api_gateway"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True, help="REST API name"),
        "state": Argument(str, default="present", choices=("present", "absent")),
        "description": Argument(str, default=""),
        "routes": Argument(list, default=(),
                           help="complete list of {path, method, function}. Methods not listed are removed"),
        "stage": Argument(str, default="local", help="stage the API is deployed to"),
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        args = {key: arguments.get(key, spec.default) for key, spec in self.arguments.items()}
        client = context.client("apigateway")
        api = find_api(client, args["name"])
        if args["state"] == "absent":
            return self.remove(client, args["name"], api, context.check_mode)

        routes = self.resolve_routes(context.client("lambda"), list(args["routes"] or ()), context.check_mode)
        region = context.target.region
        digest = routes_digest(routes, region)
        changes: list[str] = []
        before: dict[str, Any] | None = None

        if api is None:
            changes.append("created API")
            if not context.check_mode:
                api = dict(client.create_rest_api(name=args["name"], description=args["description"],
                                                  endpointConfiguration={"types": ["REGIONAL"]}))
        else:
            before = self.view(client, api, args["stage"])
            if (api.get("description") or "") != args["description"]:
                changes.append("description")
                if not context.check_mode:
                    client.update_rest_api(restApiId=api["id"], patchOperations=[
                        {"op": "replace", "path": "/description", "value": args["description"]}])

        api_id = api["id"] if api is not None else None
        route_changes: list[str] = []
        if api_id is not None:
            route_changes = self.sync_routes(client, api_id, routes, region, context.check_mode)
            route_changes += self.sync_permissions(context.client("lambda"), api_id, routes,
                                                   context.check_mode)
        else:
            route_changes = [f"route {route.key}" for route in routes]
        changes += route_changes

        stale = api_id is None or deployed_digest(client, api_id, args["stage"]) != digest
        if route_changes or stale:
            changes.append(f"deployment to stage {args['stage']}")
            if not context.check_mode and api_id is not None:
                client.create_deployment(restApiId=api_id, stageName=args["stage"],
                                         description=DEPLOYMENT_PREFIX + digest)

        facts = self.facts(context, api_id, args["name"], args["stage"], routes)
        if not changes:
            return ModuleResult.ok(f"REST API {args['name']} is up to date", facts)
        after = {"description": args["description"], "stage": args["stage"],
                 "routes": {route.key: route.function_arn or route.function for route in routes}}
        verb = "would change" if context.check_mode else "changed"
        message = f"{verb} REST API {args['name']}: {', '.join(changes)}"
        return ModuleResult.changed(message, before, after, facts)

    def resolve_routes(self, lambda_client: Any, raw_routes: list[Any], check_mode: bool) -> list[Route]:
        routes: dict[str, Route] = {}
        arns: dict[str, str | None] = {}
        for index, raw in enumerate(raw_routes):
            method, path, function = parse_route(raw, index)
            if function not in arns:
                arns[function] = resolve_function_arn(lambda_client, function)
            # In check mode a function created by an earlier task may not exist yet.
            if arns[function] is None and not check_mode:
                raise ConfigError(f"Lambda function {function!r} of route {method} {path} is not found. "
                                  "Create it before the API.")
            route = Route(method, path, function, arns[function])
            if route.key in routes:
                raise ConfigError(f"route {route.key} is listed twice")
            routes[route.key] = route
        return list(routes.values())

    def view(self, client: Any, api: dict[str, Any], stage: str) -> dict[str, Any]:
        """Return the API's description, stage and Lambda routes as they are now."""
        listed: dict[str, str] = {}
        for path, resource in read_resources(client, api["id"]).items():
            for method in resource.get("resourceMethods") or {}:
                found = read_method(client, api["id"], resource["id"], method) or {}
                uri = (found.get("methodIntegration") or {}).get("uri", "")
                listed[f"{method} {path}"] = uri.split("/functions/")[-1].removesuffix("/invocations")
        return {"description": api.get("description") or "", "stage": stage, "routes": listed}

    def sync_routes(self, client: Any, api_id: str, routes: list[Route], region: str,
                    check_mode: bool) -> list[str]:
        """Create resources, methods and integrations for `routes` and remove unlisted ones."""
        resources = read_resources(client, api_id)
        changes: list[str] = []
        for route in routes:
            uri = integration_uri(region, route.function_arn or route.function)
            resource_id = self.ensure_resource(client, api_id, resources, route.path, check_mode)
            found = read_method(client, api_id, resource_id, route.method) if resource_id else None
            if method_matches(found, uri):
                continue
            changes.append(f"route {route.key}")
            if check_mode:
                continue
            if found is None or found.get("authorizationType") != "NONE":
                client.put_method(restApiId=api_id, resourceId=resource_id, httpMethod=route.method,
                                  authorizationType="NONE")
            client.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod=route.method,
                                   type="AWS_PROXY", integrationHttpMethod="POST", uri=uri)
        changes += self.prune(client, api_id, resources, routes, check_mode)
        return changes

    def ensure_resource(self, client: Any, api_id: str, resources: dict[str, dict[str, Any]], path: str,
                        check_mode: bool) -> str | None:
        """Return the id of the resource at `path`, creating missing segments.

        In check mode nothing is created, and a missing segment returns None.
        """
        parent_id: str | None = None
        for resource_path in ancestor_paths(path):
            existing = resources.get(resource_path)
            if existing is not None:
                parent_id = existing["id"]
                continue
            if check_mode or parent_id is None:
                return None
            created = dict(client.create_resource(restApiId=api_id, parentId=parent_id,
                                                  pathPart=segments(resource_path)[-1]))
            created.setdefault("resourceMethods", {})
            resources[resource_path] = created
            parent_id = created["id"]
        return parent_id

    def prune(self, client: Any, api_id: str, resources: dict[str, dict[str, Any]], routes: list[Route],
              check_mode: bool) -> list[str]:
        """Delete methods that no route lists, then resources that no route path runs through."""
        routed_keys = {route.key for route in routes}
        routed_paths = {"/"} | {path for route in routes for path in ancestor_paths(route.path)}
        changes: list[str] = []
        for path, resource in sorted(resources.items()):
            for method in sorted(resource.get("resourceMethods") or {}):
                if f"{method} {path}" in routed_keys or path not in routed_paths:
                    continue
                changes.append(f"removed route {method} {path}")
                if not check_mode:
                    client.delete_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
        # Deepest first, because MiniStack 1.5.33 deletes only the resource itself and leaves its children.
        for path in sorted(set(resources) - routed_paths, key=lambda item: -len(segments(item))):
            methods = sorted(resources[path].get("resourceMethods") or {})
            changes.extend(f"removed route {method} {path}" for method in methods)
            changes.append(f"removed resource {path}")
            if not check_mode:
                client.delete_resource(restApiId=api_id, resourceId=resources[path]["id"])
        return changes

    def sync_permissions(self, lambda_client: Any, api_id: str, routes: list[Route],
                         check_mode: bool) -> list[str]:
        """Allow API Gateway to invoke each routed function from this API only."""
        # NOTE: a function that loses all its routes keeps its permission statement for this API.
        changes = []
        for function_arn in sorted({route.function_arn for route in routes if route.function_arn}):
            fields = function_arn.split(":")
            source_arn = f"arn:{fields[1]}:execute-api:{fields[3]}:{fields[4]}:{api_id}/*"
            if ensure_invoke_permission(lambda_client, function_arn, f"apigateway-{api_id}",
                                        "apigateway.amazonaws.com", source_arn, check_mode):
                changes.append(f"invoke permission on {fields[6]}")
        return changes

    def remove(self, client: Any, name: str, api: dict[str, Any] | None, check_mode: bool) -> ModuleResult:
        if api is None:
            return ModuleResult.ok(f"REST API {name} is absent", {"name": name})
        if not check_mode:
            client.delete_rest_api(restApiId=api["id"])
        verb = "would delete" if check_mode else "deleted"
        return ModuleResult.changed(f"{verb} REST API {name}", {"id": api["id"], "name": name}, None,
                                    {"name": name})

    def facts(self, context: ModuleContext, api_id: str | None, name: str, stage: str,
              routes: list[Route]) -> dict[str, Any]:
        """Return the API's id, name, stage, invoke URL and per-route URLs. URLs are None before creation."""
        target = context.target
        if api_id is None:
            invoke_url = None
        elif target.name == "local":
            invoke_url = f"{(target.endpoint_url or '').rstrip('/')}/restapis/{api_id}/{stage}/_user_request_"
        else:
            invoke_url = f"https://{api_id}.execute-api.{target.region}.amazonaws.com/{stage}"
        urls = {route.key: f"{invoke_url}{route.path}" if invoke_url else None for route in routes}
        return {"id": api_id, "name": name, "stage": stage, "invoke_url": invoke_url, "urls": urls}
