"""Health route of the tutor system's API: returns 200 with the function's name and the time."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return an API Gateway proxy response reporting that the API and Lambda work."""
    body = {
        "status": "ok",
        "function": getattr(context, "function_name", os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")),
        "time": int(time.time()),
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
