"""Property tests of shared.secrets_client: stored JSON reads back unchanged, invalid names send nothing."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from shared.secrets_client import MAX_SECRET_STRING_LENGTH, InvalidSecretNameError, SecretsClient

NAME_ALPHABET = string.ascii_letters + string.digits + "/_+=.@-"
# Secrets Manager appends "-" and six random characters to a secret's name to form its ARN, and its
# CreateSecret reference advises against ending a name with a hyphen followed by six characters,
# because lookups by partial ARN can then give unexpected results. Such names are valid, but this strategy
# leaves out every name whose seventh character from the end is a hyphen.
ARN_LIKE_SUFFIX = re.compile(r"-.{6}\Z", re.DOTALL)
CLEARED_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "SECRETS_CACHE_TTL_SECONDS",
)

valid_names = st.text(alphabet=NAME_ALPHABET, min_size=1, max_size=512).filter(
    lambda name: ARN_LIKE_SUFFIX.search(name) is None
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)


def json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Return JSON arrays and objects of `children`."""
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)


json_values = st.recursive(json_scalars, json_containers, max_leaves=20)
secret_values = st.dictionaries(st.text(max_size=20), json_values, max_size=5)

outside_characters = st.characters().filter(lambda character: character not in NAME_ALPHABET)
invalid_names = st.one_of(
    st.just(""),
    st.text(alphabet=NAME_ALPHABET, min_size=513, max_size=600),
    st.builds(
        lambda prefix, character, suffix: prefix + character + suffix,
        st.text(alphabet=NAME_ALPHABET, max_size=20),
        outside_characters,
        st.text(alphabet=NAME_ALPHABET, max_size=20),
    ),
)


@pytest.fixture(scope="module", autouse=True)
def aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Start moto with fake credentials for the whole module, since Hypothesis reruns each test."""
    config_folder = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        for variable in CLEARED_VARIABLES:
            patch.delenv(variable, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_CONFIG_FILE", str(config_folder / "config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config_folder / "credentials"))
        # One mock for the module keeps 50 examples fast. Examples may repeat a name, which put_secret
        # then overwrites, so the value read back is still the one the example stored.
        with mock_aws():
            yield


def fail_on_request(request: Any, **_: Any) -> None:
    """Fail the test: a request reached the point of being sent."""
    pytest.fail(f"an HTTP request was about to be sent to {request.url}")


# Module-scoped clients, because creating a boto3 client loads the service model, which costs more
# than the moto calls of an example, and each test runs 50 examples.
@pytest.fixture(scope="module")
def module_client(aws_environment: None) -> SecretsClient:
    """Return one client for all examples. put_secret drops the name from its cache, so reads reach moto."""
    return SecretsClient()


@pytest.fixture(scope="module")
def guarded_client(aws_environment: None) -> SecretsClient:
    """Return a client whose requests fail the test once they are about to be sent."""
    client = SecretsClient()
    # register_first, so the hook runs before moto's own before-send handler returns a response.
    client.boto_client.meta.events.register_first("before-send.secrets-manager", fail_on_request)
    return client


@settings(max_examples=50, deadline=None)
@given(name=valid_names, value=secret_values)
def test_stored_value_reads_back(module_client: SecretsClient, name: str, value: dict[str, Any]) -> None:
    # SecretString is at most 65536 characters long, and the strategy's sizes keep larger values rare.
    assume(len(json.dumps(value)) <= MAX_SECRET_STRING_LENGTH)
    module_client.put_secret(name, value)

    assert module_client.get_secret(name) == value
    module_client.invalidate(name)
    assert module_client.get_secret(name) == value


def test_request_hook_sees_valid_requests() -> None:
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(request.url)

    client = SecretsClient()
    client.boto_client.meta.events.register_first("before-send.secrets-manager", record)
    client.put_secret("tests/hook", {"a": 1})
    client.get_secret("tests/hook")

    assert len(seen) == 2


@settings(max_examples=50, deadline=None)
@given(name=invalid_names, value=secret_values)
def test_invalid_name_sends_nothing(guarded_client: SecretsClient, name: str, value: dict[str, Any]) -> None:
    with pytest.raises(InvalidSecretNameError, match="1 to 512 characters"):
        guarded_client.get_secret(name)
    with pytest.raises(InvalidSecretNameError, match="1 to 512 characters"):
        guarded_client.put_secret(name, value)
