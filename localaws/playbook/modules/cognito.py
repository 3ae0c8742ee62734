"""The `cognito_user_pool` module: a Cognito user pool with its app client and Lambda triggers."""

from __future__ import annotations

from typing import Any, ClassVar

from localaws.errors import ConfigError
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.modules.lambda_function import ensure_invoke_permission, resolve_function_arn
from localaws.playbook.results import ModuleResult

# PasswordPolicy fields with AWS's defaults; the argument also takes their snake_case names.
PASSWORD_POLICY_DEFAULTS: dict[str, Any] = {
    "MinimumLength": 8,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
}
PASSWORD_POLICY_ALIASES = {
    "min_length": "MinimumLength",
    "minimum_length": "MinimumLength",
    "require_uppercase": "RequireUppercase",
    "require_lowercase": "RequireLowercase",
    "require_numbers": "RequireNumbers",
    "require_symbols": "RequireSymbols",
    "temporary_password_validity_days": "TemporaryPasswordValidityDays",
}
LAMBDA_TRIGGERS = (
    "PreSignUp", "CustomMessage", "PostConfirmation", "PreAuthentication", "PostAuthentication",
    "DefineAuthChallenge", "CreateAuthChallenge", "VerifyAuthChallengeResponse", "PreTokenGeneration",
    "UserMigration",
)
DEFAULT_AUTH_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
# UpdateUserPool and UpdateUserPoolClient reset every field a request leaves out to its default,
# so an update resends these current values along with the changed ones.
POOL_UPDATE_FIELDS = (
    "Policies", "DeletionProtection", "LambdaConfig", "AutoVerifiedAttributes", "SmsVerificationMessage",
    "EmailVerificationMessage", "EmailVerificationSubject", "VerificationMessageTemplate",
    "SmsAuthenticationMessage", "UserAttributeUpdateSettings", "MfaConfiguration", "DeviceConfiguration",
    "EmailConfiguration", "SmsConfiguration", "UserPoolTags", "AdminCreateUserConfig",
    "AccountRecoverySetting",
)
CLIENT_UPDATE_FIELDS = (
    "RefreshTokenValidity", "AccessTokenValidity", "IdTokenValidity", "TokenValidityUnits", "ReadAttributes",
    "WriteAttributes", "SupportedIdentityProviders", "CallbackURLs", "LogoutURLs", "DefaultRedirectURI",
    "AllowedOAuthFlows", "AllowedOAuthScopes", "AllowedOAuthFlowsUserPoolClient", "AnalyticsConfiguration",
    "PreventUserExistenceErrors", "EnableTokenRevocation", "EnablePropagateAdditionalUserContextData",
    "AuthSessionValidity",
)
PAGE_SIZE = 60


def find_pool(client: Any, name: str) -> dict[str, Any] | None:
    """Return the described user pool named `name`, or None. Raise ConfigError when several share the name."""
    matches: list[str] = []
    request: dict[str, Any] = {"MaxResults": PAGE_SIZE}
    while True:
        page = client.list_user_pools(**request)
        matches.extend(pool["Id"] for pool in page.get("UserPools", []) if pool.get("Name") == name)
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    if len(matches) > 1:
        ids = ", ".join(matches)
        raise ConfigError(f"several user pools are named {name!r} ({ids}). Delete all but one.")
    if not matches:
        return None
    return dict(client.describe_user_pool(UserPoolId=matches[0])["UserPool"])


def find_app_client(client: Any, pool_id: str, name: str) -> dict[str, Any] | None:
    """Return the described app client named `name` of a pool, or None."""
    matches: list[str] = []
    request: dict[str, Any] = {"UserPoolId": pool_id, "MaxResults": PAGE_SIZE}
    while True:
        page = client.list_user_pool_clients(**request)
        matches.extend(item["ClientId"] for item in page.get("UserPoolClients", [])
                       if item.get("ClientName") == name)
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    if len(matches) > 1:
        raise ConfigError(f"user pool {pool_id} has several app clients named {name!r}. Delete all but one.")
    if not matches:
        return None
    return dict(client.describe_user_pool_client(UserPoolId=pool_id, ClientId=matches[0])["UserPoolClient"])


def password_policy(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Return the PasswordPolicy for the `password_policy` argument, filling AWS's defaults."""
    policy = dict(PASSWORD_POLICY_DEFAULTS)
    known = {*PASSWORD_POLICY_DEFAULTS, *PASSWORD_POLICY_ALIASES.values()}
    for key, value in (raw or {}).items():
        field = PASSWORD_POLICY_ALIASES.get(key, key)
        if field not in known:
            raise ConfigError(f"password_policy: unknown key {key!r}. Use {', '.join(sorted(known))}.")
        numeric = field in ("MinimumLength", "TemporaryPasswordValidityDays")
        policy[field] = int(value) if numeric else bool(value)
    return policy


def pool_view(pool: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any] | None:
    """Return the settings of a described pool that the `desired` view manages."""
    if pool is None:
        return None
    current_policy = (pool.get("Policies") or {}).get("PasswordPolicy") or {}
    triggers = {key: value for key, value in (pool.get("LambdaConfig") or {}).items()
                if key in LAMBDA_TRIGGERS and isinstance(value, str)}
    view: dict[str, Any] = {
        "auto_verified_attributes": sorted(pool.get("AutoVerifiedAttributes") or []),
        "username_attributes": sorted(pool.get("UsernameAttributes") or []),
        "password_policy": {field: current_policy.get(field) for field in desired["password_policy"]},
        "lambda_triggers": dict(sorted(triggers.items())),
    }
    if "email_verification_subject" in desired:
        view["email_verification_subject"] = pool.get("EmailVerificationSubject") or ""
    if "email_verification_message" in desired:
        view["email_verification_message"] = pool.get("EmailVerificationMessage") or ""
    return view


def client_view(app_client: dict[str, Any] | None) -> dict[str, Any] | None:
    if app_client is None:
        return None
    return {
        "name": app_client.get("ClientName"),
        "explicit_auth_flows": sorted(app_client.get("ExplicitAuthFlows") or []),
        "generate_secret": bool(app_client.get("ClientSecret")),
    }


def present(value: Any) -> bool:
    """Return whether to resend a described value, since botocore rejects empty strings with a minimum."""
    return value is not None and value != "" and value != {}


@register
class CognitoUserPool(Module):
    """Create, update or delete a Cognito user pool and one app client in it."""

    name = "cognito_user_pool"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True, help="user pool name"),
        "state": Argument(str, default="present", choices=("present", "absent")),
        "auto_verified_attributes": Argument(list, default=("email",)),
        "username_attributes": Argument(
            list, default=(), help="attributes users sign in with, e.g. [email], fixed at creation"),
        "password_policy": Argument(
            dict, default=None,
            help="PasswordPolicy fields (MinimumLength, RequireUppercase, ...) or their snake_case names. "
                 "AWS's defaults fill the rest."),
        "email_verification_subject": Argument(str, default=None),
        "email_verification_message": Argument(str, default=None, help="must contain {####} for the code"),
        "lambda_triggers": Argument(dict, default=None,
                                    help="trigger name (e.g. PostConfirmation) to function name or ARN"),
        "client": Argument(dict, default=None,
                           help="app client: name, explicit_auth_flows, generate_secret (fixed at creation)"),
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        args = {key: arguments.get(key, spec.default) for key, spec in self.arguments.items()}
        idp = context.client("cognito-idp")
        pool = find_pool(idp, args["name"])
        if args["state"] == "absent":
            return self.remove(idp, args["name"], pool, context.check_mode)

        desired_pool_view = self.desired_pool(args, context)
        desired_client_view = self.desired_client(args["client"])
        before: dict[str, Any] = {"pool": pool_view(pool, desired_pool_view)}
        after: dict[str, Any] = {"pool": desired_pool_view}
        pool, changes = self.sync_pool(idp, args["name"], pool, desired_pool_view, context.check_mode)

        client_id = None
        if desired_client_view is not None:
            app_client = find_app_client(idp, pool["Id"], desired_client_view["name"]) if pool else None
            before["client"] = client_view(app_client)
            after["client"] = desired_client_view
            client_id, client_changes = self.sync_client(idp, pool, app_client, desired_client_view,
                                                         context.check_mode)
            changes += client_changes

        if pool is not None:
            triggers = desired_pool_view["lambda_triggers"]
            changes += self.sync_permissions(context.client("lambda"), pool, triggers, context.check_mode)

        facts = {
            "id": pool["Id"] if pool else None,
            "arn": pool.get("Arn") if pool else None,
            "client_id": client_id,
            "name": args["name"],
        }
        if not changes:
            return ModuleResult.ok(f"user pool {args['name']} is up to date", facts)
        verb = "would change" if context.check_mode else "changed"
        message = f"{verb} user pool {args['name']}: {', '.join(changes)}"
        return ModuleResult.changed(message, before, after, facts)

    def sync_pool(self, idp: Any, name: str, pool: dict[str, Any] | None, desired: dict[str, Any],
                  check_mode: bool) -> tuple[dict[str, Any] | None, list[str]]:
        """Create the pool or update what differs. Return the pool (None in check mode) and the changes."""
        if pool is None:
            created = None if check_mode else self.create_pool(idp, name, desired)
            return created, ["created user pool"]
        current = pool_view(pool, desired) or {}
        if current["username_attributes"] != desired["username_attributes"]:
            raise ConfigError(
                f"user pool {name} signs users in with {current['username_attributes']}, "
                f"not {desired['username_attributes']}. Cognito cannot change username_attributes, "
                "so delete the pool (state: absent) and run again"
            )
        differing = [key for key in desired if current.get(key) != desired[key]]
        if not differing:
            return pool, []
        if not check_mode:
            self.update_pool(idp, pool, desired)
        return pool, ["updated " + ", ".join(differing)]

    def desired_pool(self, args: dict[str, Any], context: ModuleContext) -> dict[str, Any]:
        message = args["email_verification_message"]
        if message is not None and "{####}" not in message:
            raise ConfigError("email_verification_message must contain {####}, where Cognito puts the code")
        triggers = dict(args["lambda_triggers"] or {})
        unknown = sorted(set(triggers) - set(LAMBDA_TRIGGERS))
        if unknown:
            raise ConfigError(f"lambda_triggers: unknown triggers {', '.join(unknown)}. "
                              f"Use {', '.join(LAMBDA_TRIGGERS)}.")
        resolved = {}
        if triggers:
            lambda_client = context.client("lambda")
            for trigger, function in sorted(triggers.items()):
                arn = resolve_function_arn(lambda_client, str(function))
                if arn is None:
                    if not context.check_mode:
                        raise ConfigError(f"Lambda function {function!r} of trigger {trigger} is not found. "
                                          "Create it before the user pool.")
                    arn = str(function)
                resolved[trigger] = arn
        view: dict[str, Any] = {
            "auto_verified_attributes": sorted(args["auto_verified_attributes"] or []),
            "username_attributes": sorted(args["username_attributes"] or []),
            "password_policy": password_policy(args["password_policy"]),
            "lambda_triggers": resolved,
        }
        if args["email_verification_subject"] is not None:
            view["email_verification_subject"] = args["email_verification_subject"]
        if message is not None:
            view["email_verification_message"] = message
        return view

    def desired_client(self, raw: dict[str, Any] | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        if not raw.get("name"):
            raise ConfigError("client: name is missing")
        unknown = sorted(set(raw) - {"name", "explicit_auth_flows", "generate_secret"})
        if unknown:
            raise ConfigError(f"client: unknown keys {', '.join(unknown)}. "
                              "Use name, explicit_auth_flows and generate_secret.")
        flows = raw.get("explicit_auth_flows")
        return {
            "name": str(raw["name"]),
            "explicit_auth_flows": sorted(DEFAULT_AUTH_FLOWS if flows is None else flows),
            "generate_secret": bool(raw.get("generate_secret", False)),
        }

    def pool_settings(self, desired: dict[str, Any]) -> dict[str, Any]:
        """Return the CreateUserPool/UpdateUserPool fields for the managed settings."""
        settings: dict[str, Any] = {
            "AutoVerifiedAttributes": desired["auto_verified_attributes"],
            "LambdaConfig": desired["lambda_triggers"],
        }
        if "email_verification_subject" in desired:
            settings["EmailVerificationSubject"] = desired["email_verification_subject"]
        if "email_verification_message" in desired:
            settings["EmailVerificationMessage"] = desired["email_verification_message"]
        return settings

    def create_pool(self, idp: Any, name: str, desired: dict[str, Any]) -> dict[str, Any]:
        request = {
            "PoolName": name,
            "Policies": {"PasswordPolicy": desired["password_policy"]},
            **self.pool_settings(desired),
        }
        if desired["username_attributes"]:
            request["UsernameAttributes"] = desired["username_attributes"]
        pool_id = idp.create_user_pool(**request)["UserPool"]["Id"]
        return dict(idp.describe_user_pool(UserPoolId=pool_id)["UserPool"])

    def update_pool(self, idp: Any, pool: dict[str, Any], desired: dict[str, Any]) -> None:
        request = {key: pool[key] for key in POOL_UPDATE_FIELDS if present(pool.get(key))}
        policies = dict(request.get("Policies") or {})
        policies["PasswordPolicy"] = {**(policies.get("PasswordPolicy") or {}), **desired["password_policy"]}
        request["Policies"] = policies
        admin = dict(request.get("AdminCreateUserConfig") or {})
        # AWS rejects the deprecated UnusedAccountValidityDays next to TemporaryPasswordValidityDays.
        if "TemporaryPasswordValidityDays" in policies["PasswordPolicy"]:
            admin.pop("UnusedAccountValidityDays", None)
        if admin:
            request["AdminCreateUserConfig"] = admin
        request.update(self.pool_settings(desired))
        template = dict(request.get("VerificationMessageTemplate") or {})
        # Cognito reads the template before the top-level fields, so both carry the requested text.
        if "email_verification_subject" in desired:
            template["EmailSubject"] = desired["email_verification_subject"]
        if "email_verification_message" in desired:
            template["EmailMessage"] = desired["email_verification_message"]
        if template:
            template.setdefault("DefaultEmailOption", "CONFIRM_WITH_CODE")
            request["VerificationMessageTemplate"] = template
        idp.update_user_pool(UserPoolId=pool["Id"], **request)

    def sync_client(self, idp: Any, pool: dict[str, Any] | None, app_client: dict[str, Any] | None,
                    desired: dict[str, Any], check_mode: bool) -> tuple[str | None, list[str]]:
        """Create the app client or update its auth flows. Return its id (None in check mode) and changes."""
        if app_client is None:
            if check_mode or pool is None:
                return None, [f"created app client {desired['name']}"]
            created = idp.create_user_pool_client(UserPoolId=pool["Id"], ClientName=desired["name"],
                                                  ExplicitAuthFlows=desired["explicit_auth_flows"],
                                                  GenerateSecret=desired["generate_secret"])
            return str(created["UserPoolClient"]["ClientId"]), [f"created app client {desired['name']}"]

        client_id = str(app_client["ClientId"])
        current = client_view(app_client) or {}
        if current["generate_secret"] != desired["generate_secret"]:
            raise ConfigError(
                f"app client {desired['name']} {'has' if current['generate_secret'] else 'has no'} secret, "
                "and Cognito cannot change generate_secret. Rename the client, or delete it and run again."
            )
        if current["explicit_auth_flows"] == desired["explicit_auth_flows"]:
            return client_id, []
        if not check_mode and pool is not None:
            request = {key: app_client[key] for key in CLIENT_UPDATE_FIELDS if present(app_client.get(key))}
            request["ExplicitAuthFlows"] = desired["explicit_auth_flows"]
            idp.update_user_pool_client(UserPoolId=pool["Id"], ClientId=client_id, ClientName=desired["name"],
                                        **request)
        return client_id, [f"updated explicit_auth_flows of app client {desired['name']}"]

    def sync_permissions(self, lambda_client: Any, pool: dict[str, Any], triggers: dict[str, str],
                         check_mode: bool) -> list[str]:
        """Allow Cognito to invoke each trigger function from this pool only."""
        changes = []
        for function_arn in sorted(set(triggers.values())):
            if not function_arn.startswith("arn:"):
                continue
            if ensure_invoke_permission(lambda_client, function_arn, f"cognito-{pool['Id']}",
                                        "cognito-idp.amazonaws.com", pool["Arn"], check_mode):
                changes.append(f"invoke permission on {function_arn.split(':')[6]}")
        return changes

    def remove(self, idp: Any, name: str, pool: dict[str, Any] | None, check_mode: bool) -> ModuleResult:
        if pool is None:
            return ModuleResult.ok(f"user pool {name} is absent", {"name": name})
        if not check_mode:
            idp.delete_user_pool(UserPoolId=pool["Id"])
        verb = "would delete" if check_mode else "deleted"
        return ModuleResult.changed(f"{verb} user pool {name}", {"id": pool["Id"], "name": name}, None,
                                    {"name": name})
