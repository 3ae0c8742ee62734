"""Playbook modules. Importing this package registers every module in `base.REGISTRY`."""

from localaws.playbook.modules import (  # noqa: F401 - imported to register the modules.
    api_gateway,
    cognito,
    iam,
    kms,
    lambda_function,
    logs,
    rds,
    rotation,
    s3,
    secrets,
    ses,
)
