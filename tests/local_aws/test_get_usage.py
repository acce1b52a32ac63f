"""API Gateway's ``GetUsage``, which moto lacks: daily ``[used, remaining]`` per API key of a usage plan.

Usage is recorded the way the data plane records it, through ``usage_ledger(backend)``;
the answer goes over HTTP with boto3 against an in-process emulator.
"""

from datetime import UTC, datetime

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.apigateway.models import apigateway_backends

from local_aws.apigateway_gaps import usage_ledger
from tests.support.emulator import client

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def apigw(emulator):
    # parameter_validation off lets a test send a request without its required dates
    return client(emulator, "apigateway", config=Config(parameter_validation=False))


@pytest.fixture
def plan_with_key(apigw):
    """A usage plan with a daily quota of 5 and one API key in it."""
    plan = apigw.create_usage_plan(name="usage-test", quota={"limit": 5, "period": "DAY", "offset": 0})
    key = apigw.create_api_key(name="usage-test", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    return plan["id"], key["id"]


def record(plan_id: str, key_id: str, count: int, day: int) -> None:
    backend = apigateway_backends[ACCOUNT][REGION]
    quota = backend.get_usage_plan(plan_id).quota
    for _ in range(count):
        usage_ledger(backend).consume(plan_id, key_id, quota, datetime(2024, 5, day, 12, tzinfo=UTC))


def assert_error(excinfo, code: str, status: int) -> None:
    error = excinfo.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)


def test_get_usage_reports_recorded_requests_per_day(apigw, plan_with_key):
    plan_id, key_id = plan_with_key
    record(plan_id, key_id, 2, day=1)
    record(plan_id, key_id, 5, day=2)

    usage = apigw.get_usage(usagePlanId=plan_id, startDate="2024-05-01", endDate="2024-05-03")

    assert (usage["usagePlanId"], usage["startDate"], usage["endDate"]) == (plan_id, "2024-05-01", "2024-05-03")
    assert usage["items"] == {key_id: [[2, 3], [5, 0], [0, 5]]}
    assert "position" not in usage


def test_get_usage_lists_plan_keys_without_requests(apigw, plan_with_key):
    plan_id, key_id = plan_with_key

    usage = apigw.get_usage(usagePlanId=plan_id, startDate="2024-05-01", endDate="2024-05-01")

    assert usage["items"] == {key_id: [[0, 5]]}


def test_get_usage_filters_by_key(apigw, plan_with_key):
    plan_id, key_id = plan_with_key
    other = apigw.create_api_key(name="usage-test-other", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=other["id"], keyType="API_KEY")
    record(plan_id, other["id"], 1, day=1)

    usage = apigw.get_usage(usagePlanId=plan_id, keyId=key_id, startDate="2024-05-01", endDate="2024-05-01")

    assert usage["items"] == {key_id: [[0, 5]]}


def test_get_usage_of_unknown_plan_is_not_found(apigw):
    with pytest.raises(ClientError) as excinfo:
        apigw.get_usage(usagePlanId="nosuchplan", startDate="2024-05-01", endDate="2024-05-01")

    assert_error(excinfo, "NotFoundException", 404)


@pytest.mark.parametrize(
    "dates",
    [
        {"startDate": "2024-05-32", "endDate": "2024-06-01"},
        {"startDate": "2024-5-1", "endDate": "2024-06-01"},
        {"startDate": "2024-05-01"},
        {"startDate": "2024-05-02", "endDate": "2024-05-01"},
    ],
    ids=["invalid-date", "not-iso", "missing-end", "end-before-start"],
)
def test_get_usage_rejects_bad_dates(apigw, plan_with_key, dates):
    plan_id, _ = plan_with_key

    with pytest.raises(ClientError) as excinfo:
        apigw.get_usage(usagePlanId=plan_id, **dates)

    assert_error(excinfo, "BadRequestException", 400)
