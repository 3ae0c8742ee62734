"""A secret's rotation policy and history, read the same way on both targets.

On `aws`, Secrets Manager stores the policy (RotationEnabled, RotationLambdaARN, RotationRules) and
the last rotation date. On `local`, MiniStack 1.5.33's RotateSecret rotates at once instead of
scheduling and its DescribeSecret reports no LastRotatedDate, so the `secret_rotation` module and the
driver keep both in the secret's tags instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

LAMBDA_TAG = "localaws:rotation-lambda"
DAYS_TAG = "localaws:rotation-days"
LAST_ROTATED_TAG = "localaws:last-rotated"
SECRET_KINDS = ("database", "jwt")


def secret_name(project: str, environment: str, kind: str) -> str:
    return f"{project}/{environment}/{kind}"


def tags_of(description: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in description.get("Tags") or []}


def as_datetime(value: Any) -> datetime | None:
    """Convert a boto3 timestamp, epoch seconds or ISO text to an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RotationPolicy:
    """Rotation function, interval and history of one secret."""

    secret: str
    arn: str
    enabled: bool
    lambda_arn: str | None
    days: int | None
    last_rotated: datetime | None
    created: datetime | None

    @property
    def next_rotation(self) -> datetime | None:
        """Return the time the next rotation falls due: the interval after the last rotation or creation."""
        start = self.last_rotated or self.created
        if not self.enabled or self.days is None or start is None:
            return None
        return start + timedelta(days=self.days)

    def is_due(self, now: datetime) -> bool:
        due = self.next_rotation
        return due is not None and now >= due

    def as_dict(self) -> dict[str, Any]:
        next_rotation = self.next_rotation
        return {
            "secret": self.secret,
            "enabled": self.enabled,
            "lambda": self.lambda_arn,
            "interval_days": self.days,
            "last_rotated": self.last_rotated.isoformat() if self.last_rotated else None,
            "next_rotation": next_rotation.isoformat() if next_rotation else None,
        }


def read_policy(description: dict[str, Any], target: str) -> RotationPolicy:
    """Build the policy from a DescribeSecret response of the given target."""
    created = as_datetime(description.get("CreatedDate"))
    if target == "local":
        tags = tags_of(description)
        days_text = tags.get(DAYS_TAG)
        return RotationPolicy(
            secret=description["Name"], arn=description["ARN"],
            enabled=LAMBDA_TAG in tags and bool(days_text),
            lambda_arn=tags.get(LAMBDA_TAG),
            days=int(days_text) if days_text and days_text.isdigit() else None,
            last_rotated=as_datetime(tags.get(LAST_ROTATED_TAG)),
            created=created,
        )
    rules = description.get("RotationRules") or {}
    days = rules.get("AutomaticallyAfterDays")
    return RotationPolicy(
        secret=description["Name"], arn=description["ARN"],
        enabled=bool(description.get("RotationEnabled")),
        lambda_arn=description.get("RotationLambdaARN"),
        days=int(days) if days is not None else None,
        last_rotated=as_datetime(description.get("LastRotatedDate")),
        created=created,
    )
