"""The `s3_bucket` module: a bucket with its versioning, CORS rules, default encryption and tags."""

from __future__ import annotations

from typing import Any, ClassVar

import botocore.exceptions

from localaws.playbook.modules import _aws
from localaws.playbook.modules.base import Argument, Module, ModuleContext, register
from localaws.playbook.results import ModuleResult

KIND = "S3 bucket"
# DeleteObjects accepts at most 1000 keys per request.
DELETE_BATCH = 1000


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def bucket_exists(s3: Any, name: str) -> bool:
    """Tell whether the bucket exists and these credentials may use it."""
    try:
        s3.head_bucket(Bucket=name)
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def read_versioning(s3: Any, name: str) -> bool:
    return bool(s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled")


def read_cors(s3: Any, name: str) -> list[dict[str, Any]]:
    try:
        return list(s3.get_bucket_cors(Bucket=name).get("CORSRules", []))
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "NoSuchCORSConfiguration":
            return []
        raise


def read_encryption(s3: Any, name: str) -> dict[str, Any]:
    """Return the default encryption as `{algorithm, kms_key}`, or `{}` when the bucket has none."""
    try:
        configuration = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "ServerSideEncryptionConfigurationNotFoundError":
            return {}
        raise
    for rule in configuration.get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault")
        if default:
            return {"algorithm": default.get("SSEAlgorithm"), "kms_key": default.get("KMSMasterKeyID")}
    return {}


def read_tags(s3: Any, name: str) -> dict[str, str]:
    try:
        return _aws.tags_from_list(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
    except botocore.exceptions.ClientError as error:
        if _aws.error_code(error) == "NoSuchTagSet":
            return {}
        raise


def desired_encryption(arguments: dict[str, Any]) -> dict[str, Any] | None:
    algorithm = arguments.get("encryption")
    if algorithm is None:
        return None
    kms_key = arguments.get("kms_key") if algorithm == "aws:kms" else None
    return {"algorithm": algorithm, "kms_key": kms_key}


def compare_bucket(s3: Any, kms: Any, name: str, arguments: dict[str, Any]) -> _aws.Changes:
    """Read each property the arguments manage and collect those that differ."""
    changes = _aws.Changes()
    versioning = arguments.get("versioning")
    if versioning is not None:
        current_versioning = read_versioning(s3, name)
        if current_versioning != versioning:
            changes.add("versioning", current_versioning, versioning)

    cors = arguments.get("cors")
    if cors is not None:
        current_cors = read_cors(s3, name)
        if current_cors != cors:
            changes.add("cors", current_cors, cors)

    encryption = desired_encryption(arguments)
    if encryption is not None:
        current = read_encryption(s3, name)
        same = (current.get("algorithm") == encryption["algorithm"]
                and _aws.same_kms_key(kms, current.get("kms_key"), encryption["kms_key"]))
        if not same:
            changes.add("encryption", current, encryption)

    tags = _aws.normalize_tags(arguments.get("tags"))
    if tags is not None:
        current_tags = read_tags(s3, name)
        if current_tags != tags:
            changes.add("tags", current_tags, tags)
    return changes


def create_bucket(s3: Any, name: str) -> None:
    region = s3.meta.region_name
    if region in (None, "us-east-1"):
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def apply_changes(s3: Any, name: str, changes: _aws.Changes) -> None:
    after = changes.after
    if "versioning" in changes:
        status = "Enabled" if after["versioning"] else "Suspended"
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    if "cors" in changes:
        if after["cors"]:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": after["cors"]})
        else:
            s3.delete_bucket_cors(Bucket=name)
    if "encryption" in changes:
        default: dict[str, Any] = {"SSEAlgorithm": after["encryption"]["algorithm"]}
        if after["encryption"]["kms_key"]:
            default["KMSMasterKeyID"] = after["encryption"]["kms_key"]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default}]})
    if "tags" in changes:
        if after["tags"]:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _aws.tags_to_list(after["tags"])})
        else:
            s3.delete_bucket_tagging(Bucket=name)


def empty_bucket(s3: Any, name: str) -> None:
    """Delete every object version and delete marker, so the bucket itself can be deleted."""
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name):
        keys = [{"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start:start + DELETE_BATCH]
            s3.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})


@register
class S3Bucket(Module):
    """Create, update or delete an S3 bucket with its versioning, CORS rules, encryption and tags."""

    name = "s3_bucket"
    arguments: ClassVar[dict[str, Argument]] = {
        "name": Argument(str, required=True, help="Bucket name."),
        "versioning": Argument(bool, help="Enable (true) or suspend (false) object versioning."),
        "cors": Argument(list, help="CORS rules as `put_bucket_cors` takes them. `[]` removes them."),
        "encryption": Argument(
            str, choices=("AES256", "aws:kms"),
            help="Default encryption: `AES256` (S3-managed keys) or `aws:kms`. Unset leaves it as is. "
                 "S3 encrypts new buckets with AES256 by default.",
        ),
        "kms_key": Argument(str, help="KMS key alias, id or ARN for `aws:kms`. Unset uses aws/s3."),
        "tags": _aws.TAGS,
        "force": Argument(bool, default=False,
                          help="With `state: absent`, delete every object version first."),
        "state": _aws.STATE,
    }

    def run(self, arguments: dict[str, Any], context: ModuleContext) -> ModuleResult:
        s3 = context.client("s3")
        name = arguments["name"]
        facts = {"name": name, "arn": bucket_arn(name)}
        exists = bucket_exists(s3, name)

        if arguments.get("state", "present") == "absent":
            if not exists:
                return _aws.absent_result(KIND, name)
            if not context.check_mode:
                if arguments.get("force"):
                    empty_bucket(s3, name)
                s3.delete_bucket(Bucket=name)
            return _aws.removed_result(KIND, name, {"name": name}, context.check_mode, facts)

        kms = context.client("kms")
        if not exists:
            after = {"name": name, **self._desired(arguments)}
            if not context.check_mode:
                create_bucket(s3, name)
                changes = compare_bucket(s3, kms, name, arguments)
                apply_changes(s3, name, changes)
            return _aws.created_result(KIND, name, after, context.check_mode, facts)

        changes = compare_bucket(s3, kms, name, arguments)
        if not changes:
            return ModuleResult.ok(f"{KIND} {name} is up to date", facts)
        if not context.check_mode:
            apply_changes(s3, name, changes)
        return _aws.changed_result(KIND, name, changes, context.check_mode, facts)

    @staticmethod
    def _desired(arguments: dict[str, Any]) -> dict[str, Any]:
        desired = {
            "versioning": arguments.get("versioning"),
            "cors": arguments.get("cors"),
            "encryption": desired_encryption(arguments),
            "tags": _aws.normalize_tags(arguments.get("tags")),
        }
        return {key: value for key, value in desired.items() if value is not None}
