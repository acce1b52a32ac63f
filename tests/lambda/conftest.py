"""Shared fixtures for the Lambda handler tests.

The handler lives in `lambda/kms_key_generator/handler.py`; `lambda` is a Python keyword and every function's
file is called `handler.py`, so it is loaded from its path under the unique module name
`kms_key_generator_handler` (see `tests/support/lambdas.py`), which test modules then import by that name.
"""

from types import SimpleNamespace

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from tests.support.lambdas import load_handler

handler = load_handler("kms_key_generator", "kms_key_generator_handler")
_CONTAINER_CACHES = (handler._session, handler._client, handler._caller_identity)


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch):
    """Dummy credentials and the function's default configuration; a fresh "container" for every test."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SERVICE_NAME", "kms-key-generator")
    monkeypatch.setenv("CROSS_ACCOUNT_ROLE_NAME", "kms-key-generator-cross-account")
    monkeypatch.setenv("ALLOWED_ACCOUNTS", "")
    monkeypatch.setenv("ALLOWED_REGIONS", "")
    for cache in _CONTAINER_CACHES:
        cache.cache_clear()
    yield
    for cache in _CONTAINER_CACHES:
        cache.cache_clear()


@pytest.fixture
def aws():
    """Every AWS call in the test goes to moto."""
    with mock_aws():
        yield


@pytest.fixture
def context():
    """What the Lambda runtime passes: the request id and the function's own ARN (moto's default account)."""
    return SimpleNamespace(
        aws_request_id="c0ffee00-1234-4abc-8def-0123456789ab",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:function:kms-key-generator",
    )
