"""The `ses_identity` module: an SES email address or domain identity, submitted for verification."""

from __future__ import annotations

from typing import Any, ClassVar

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

KIND = "SES identity"
# Statuses after which SES no longer checks the identity, so verification must be requested again.
RETRY_STATUSES = ("Failed", "TemporaryFailure")


def identity_type(identity: str) -> str:
    return "EmailAddress" if "@" in identity else "Domain"


def identity_exists(ses: Any, identity: str) -> bool:
    """Tell whether SES lists the identity, because verification attributes alone cannot tell.

    MiniStack 1.5.33 reports `Pending` for identities it does not have.
    """
    paginator = ses.get_paginator("list_identities")
    for page in paginator.paginate(IdentityType=identity_type(identity)):
        if identity in page.get("Identities", []):
            return True
    return False


def read_verification(ses: Any, identity: str) -> dict[str, Any]:
    attributes = ses.get_identity_verification_attributes(Identities=[identity])
    return dict(attributes.get("VerificationAttributes", {}).get(identity, {}))


def request_verification(ses: Any, identity: str) -> None:
    if identity_type(identity) == "EmailAddress":
        ses.verify_email_identity(EmailAddress=identity)
    else:
        ses.verify_domain_identity(Domain=identity)


@register
class SesIdentity(Module):
    """Add an SES email address or domain identity and request its verification, or delete it."""

    name = "ses_identity"
    arguments: ClassVar[dict[str, Argument]] = {
        "identity": Argument(str, required=True,
                             help="Email address (contains `@`) or domain to verify as a sender."),
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        ses = context.client("ses")
        identity = arguments["identity"]
        exists = identity_exists(ses, identity)
        verification = read_verification(ses, identity) if exists else {}
        status = verification.get("VerificationStatus")

        if arguments.get("state", "present") == "absent":
            if not exists:
                return _aws.absent_result(KIND, identity)
            if not context.check_mode:
                ses.delete_identity(Identity=identity)
            return _aws.removed_result(KIND, identity, {"identity": identity, "verification_status": status},
                                       context.check_mode, self._facts(identity, verification))

        if exists and status not in RETRY_STATUSES:
            return ModuleResult.ok(f"{KIND} {identity} is {status}", self._facts(identity, verification))

        if not context.check_mode:
            request_verification(ses, identity)
            verification = read_verification(ses, identity)
        facts = self._facts(identity, verification)
        after = {"identity": identity, "verification_status": facts["verification_status"]}
        if not exists:
            return _aws.created_result(KIND, identity, after, context.check_mode, facts)
        verb = "would request" if context.check_mode else "requested"
        return ModuleResult.changed(f"{verb} verification of {KIND} {identity} again after status {status}",
                                    {"identity": identity, "verification_status": status}, after, facts)

    @staticmethod
    def _facts(identity: str, verification: dict[str, Any]) -> dict[str, Any]:
        facts = {"identity": identity, "verification_status": verification.get("VerificationStatus")}
        if verification.get("VerificationToken"):
            facts["verification_token"] = verification["VerificationToken"]
        return facts
