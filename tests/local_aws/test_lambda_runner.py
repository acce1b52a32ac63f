"""Python Lambda functions really run in the emulator, and Secrets Manager rotation drives them.

Every function here is a zip built in the test; it calls the emulator back through boto3 with no
endpoint of its own (the emulator's AWS_ENDPOINT_URL routes it), so its side effects prove it ran.
"""

import base64
import io
import json
import textwrap
import time
import zipfile

import pytest
from botocore.exceptions import ClientError

from tests.support.emulator import client as emulator_client

pytestmark = pytest.mark.seconds(25)

REGION = "us-east-1"
ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
ROTATION_STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]

WORKER = """
import json, os, sys, time
import boto3


def handler(event, context):
    print("writing", event["name"])
    boto3.client("ssm").put_parameter(Name=event["name"], Value=event["value"], Type="String", Overwrite=True)
    return {
        "written": event["name"],
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {key: os.environ.get(key) for key in (
            "GREETING", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY", "LOCAL_AWS_TEST_HOST_ONLY")},
        "moto_loaded": "moto" in sys.modules,
    }


def fails(event, context):
    raise ValueError("boom: " + event.get("why", ""))


def sleeps(event, context):
    time.sleep(30)
    return "woke up"
"""

# A rotation function in the shape of the AWS templates; it records every step it is asked to run
# (an SSM parameter per secret) and fails the step named in FAIL_STEP.
ROTATOR = """
import json, os
import boto3


def handler(event, context):
    secrets = boto3.client("secretsmanager")
    ssm = boto3.client("ssm")
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    metadata = secrets.describe_secret(SecretId=arn)
    record = "/rotation-steps/" + metadata["Name"]
    try:
        steps = json.loads(ssm.get_parameter(Name=record)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        steps = []
    steps.append([step, arn, token])
    ssm.put_parameter(Name=record, Value=json.dumps(steps), Type="String", Overwrite=True)

    if step == os.environ.get("FAIL_STEP"):
        raise RuntimeError(step + " failed on purpose")
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("Secret version %s has no stage for rotation of secret %s." % (token, arn))
    if "AWSCURRENT" in versions[token]:
        return
    if "AWSPENDING" not in versions[token]:
        raise ValueError("Secret version %s not set as AWSPENDING for rotation of secret %s." % (token, arn))

    if step == "createSecret":
        try:
            current = secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        except secrets.exceptions.ResourceNotFoundException:  # a secret created without a value
            current = "v0"
        try:
            secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except secrets.exceptions.ResourceNotFoundException:
            secrets.put_secret_value(
                SecretId=arn, ClientRequestToken=token, SecretString=current + "+rotated", VersionStages=["AWSPENDING"]
            )
    elif step == "testSecret":
        secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    elif step == "finishSecret":
        current = next((version for version, stages in versions.items() if "AWSCURRENT" in stages), None)
        remove = {"RemoveFromVersionId": current} if current else {}
        secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, **remove)
"""


def _zip(source: str, name: str = "handler.py") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, textwrap.dedent(source))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(emulator):
    return lambda service: emulator_client(emulator, service)


@pytest.fixture(scope="module")
def role_arn(client):
    return client("iam").create_role(RoleName="lambda-runner", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]


@pytest.fixture(scope="module")
def create_function(client, role_arn):
    def create(name, source, handler, timeout=30, env=None):
        return client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _zip(source)},
            Timeout=timeout,
            Environment={"Variables": env or {}},
        )["FunctionArn"]

    return create


@pytest.fixture(scope="module")
def rotator(create_function):
    return create_function("rotator", ROTATOR, "handler.handler")


@pytest.fixture(scope="module")
def broken_rotator(create_function):
    return create_function("broken-rotator", ROTATOR, "handler.handler", env={"FAIL_STEP": "createSecret"})


def _invoke(client, name, event, **kwargs):
    response = client("lambda").invoke(FunctionName=name, Payload=json.dumps(event), **kwargs)
    return response, json.loads(response["Payload"].read())


def _steps(client, secret_name):
    return json.loads(client("ssm").get_parameter(Name=f"/rotation-steps/{secret_name}")["Parameter"]["Value"])


def _stages(client, secret_name):
    return client("secretsmanager").describe_secret(SecretId=secret_name)["VersionIdsToStages"]


# --- lambda.invoke ------------------------------------------------------------------------------------------


def test_invoke_runs_the_handler_and_its_boto3_calls_reach_the_emulator(client, create_function, monkeypatch):
    monkeypatch.setenv("LOCAL_AWS_TEST_HOST_ONLY", "leaked")  # the emulator's environment must not reach the function
    arn = create_function("worker", WORKER, "handler.handler", timeout=7, env={"GREETING": "hello"})

    response, result = _invoke(client, "worker", {"name": "/worker/out", "value": "42"}, LogType="Tail")

    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert client("ssm").get_parameter(Name="/worker/out")["Parameter"]["Value"] == "42"
    assert result["written"] == "/worker/out"
    assert (result["function_name"], result["arn"]) == ("worker", arn)
    assert 0 < result["remaining_ms"] <= 7000
    assert result["env"] == {
        "GREETING": "hello",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "worker",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LOCAL_AWS_TEST_HOST_ONLY": None,
    }
    assert result["moto_loaded"] is False
    log = base64.b64decode(response["LogResult"]).decode()
    assert f"START RequestId: {result['request_id']}" in log and "writing /worker/out" in log
    assert f"REPORT RequestId: {result['request_id']}" in log

    events = client("logs").filter_log_events(logGroupName="/aws/lambda/worker")["events"]
    assert any(event["message"] == "writing /worker/out" for event in events)


def test_an_exception_is_an_unhandled_function_error(client, create_function):
    create_function("failing", WORKER, "handler.fails")

    response, error = _invoke(client, "failing", {"why": "no key"}, LogType="Tail")

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "boom: no key")
    assert 'raise ValueError("boom: "' in "".join(error["stackTrace"])
    assert "[ERROR] ValueError: boom: no key" in base64.b64decode(response["LogResult"]).decode()


def test_a_missing_handler_module_is_an_import_error(client, create_function):
    create_function("misnamed", WORKER, "nothere.handler")

    response, error = _invoke(client, "misnamed", {})

    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"].startswith("Unable to import module 'nothere'")


def test_the_function_timeout_is_enforced(client, create_function):
    create_function("sleeper", WORKER, "handler.sleeps", timeout=1)

    started = time.monotonic()
    response, error = _invoke(client, "sleeper", {})

    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]


def test_event_invocations_run_in_the_background(client, create_function):
    create_function("eventual", WORKER, "handler.handler")

    response = client("lambda").invoke(
        FunctionName="eventual", InvocationType="Event", Payload=json.dumps({"name": "/worker/event", "value": "e"})
    )

    assert response["StatusCode"] == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            assert client("ssm").get_parameter(Name="/worker/event")["Parameter"]["Value"] == "e"
            return
        except ClientError:
            time.sleep(0.2)
    pytest.fail("the Event invocation never wrote its parameter")


# --- Secrets Manager rotation ----------------------------------------------------------------------------------


def test_rotate_secret_runs_the_four_steps_and_ends_with_a_new_current_version(client, rotator):
    secrets = client("secretsmanager")
    created = secrets.create_secret(Name="rotated", SecretString="v1")

    rotated = secrets.rotate_secret(
        SecretId="rotated", RotationLambdaARN=rotator, RotationRules={"AutomaticallyAfterDays": 30}
    )

    token = rotated["VersionId"]
    assert _steps(client, "rotated") == [[step, created["ARN"], token] for step in ROTATION_STEPS]
    current = secrets.get_secret_value(SecretId="rotated")
    assert (current["VersionId"], current["SecretString"]) == (token, "v1+rotated")
    assert secrets.get_secret_value(SecretId="rotated", VersionStage="AWSPREVIOUS")["VersionId"] == created["VersionId"]
    described = secrets.describe_secret(SecretId="rotated")
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == rotator
    assert described["RotationRules"] == {"AutomaticallyAfterDays": 30}
    assert "LastRotatedDate" in described and "NextRotationDate" in described

    # Again, without configuration: the configured function rotates it (the AWSPENDING label left on the
    # current version by the first rotation is no obstacle).
    again = secrets.rotate_secret(SecretId="rotated")

    assert [step for step, _, _ in _steps(client, "rotated")[4:]] == ROTATION_STEPS
    current = secrets.get_secret_value(SecretId="rotated")
    assert (current["VersionId"], current["SecretString"]) == (again["VersionId"], "v1+rotated+rotated")
    assert secrets.describe_secret(SecretId="rotated")["RotationLambdaARN"] == rotator


def test_a_secret_created_without_a_value_gets_its_first_version_from_the_rotation(client, rotator):
    secrets = client("secretsmanager")
    secrets.create_secret(Name="valueless")

    rotated = secrets.rotate_secret(
        SecretId="valueless", RotationLambdaARN=rotator, RotationRules={"AutomaticallyAfterDays": 1}
    )

    assert [step for step, _, _ in _steps(client, "valueless")] == ROTATION_STEPS
    current = secrets.get_secret_value(SecretId="valueless")
    assert (current["VersionId"], current["SecretString"]) == (rotated["VersionId"], "v0+rotated")
    assert _stages(client, "valueless") == {rotated["VersionId"]: ["AWSPENDING", "AWSCURRENT"]}


def test_a_failing_create_secret_step_leaves_the_current_version_alone(client, broken_rotator):
    secrets = client("secretsmanager")
    created = secrets.create_secret(Name="unrotatable", SecretString="v1")

    rotated = secrets.rotate_secret(
        SecretId="unrotatable", RotationLambdaARN=broken_rotator, RotationRules={"AutomaticallyAfterDays": 7}
    )

    assert [step for step, _, _ in _steps(client, "unrotatable")] == ["createSecret"]
    current = secrets.get_secret_value(SecretId="unrotatable")
    assert (current["VersionId"], current["SecretString"]) == (created["VersionId"], "v1")
    assert _stages(client, "unrotatable") == {
        created["VersionId"]: ["AWSCURRENT"],
        rotated["VersionId"]: ["AWSPENDING"],
    }
    assert "LastRotatedDate" not in secrets.describe_secret(SecretId="unrotatable")
    log = client("logs").filter_log_events(logGroupName="/aws/lambda/broken-rotator")["events"]
    assert any("createSecret failed on purpose" in event["message"] for event in log)


def test_an_incomplete_rotation_is_reattempted_with_its_token(client, create_function):
    secrets = client("secretsmanager")
    arn = create_function("flaky-rotator", ROTATOR, "handler.handler", env={"FAIL_STEP": "setSecret"})
    secrets.create_secret(Name="flaky", SecretString="v1")
    first = secrets.rotate_secret(SecretId="flaky", RotationLambdaARN=arn, RotationRules={"AutomaticallyAfterDays": 7})
    assert [step for step, _, _ in _steps(client, "flaky")] == ["createSecret", "setSecret"]
    assert _stages(client, "flaky")[first["VersionId"]] == ["AWSPENDING"]

    client("lambda").update_function_configuration(FunctionName="flaky-rotator", Environment={"Variables": {}})
    with pytest.raises(ClientError) as excinfo:
        secrets.rotate_secret(SecretId="flaky")

    error = excinfo.value.response["Error"]
    assert error["Code"] == "InvalidRequestException"
    assert error["Message"] == "A previous rotation isn't complete. That rotation will be reattempted."
    reattempt = _steps(client, "flaky")[2:]
    assert [(step, token) for step, _, token in reattempt] == [(step, first["VersionId"]) for step in ROTATION_STEPS]
    current = secrets.get_secret_value(SecretId="flaky")
    assert (current["VersionId"], current["SecretString"]) == (first["VersionId"], "v1+rotated")

    secrets.rotate_secret(SecretId="flaky")  # what a caller retrying gets: a fresh rotation
    assert secrets.get_secret_value(SecretId="flaky")["SecretString"] == "v1+rotated+rotated"


def test_rotate_immediately_false_only_tests_and_keeps_schedule_rules(client, rotator):
    secrets = client("secretsmanager")
    created = secrets.create_secret(Name="scheduled", SecretString="v1")
    rules = {"ScheduleExpression": "rate(10 days)", "Duration": "2h"}

    rotated = secrets.rotate_secret(
        SecretId="scheduled", RotationLambdaARN=rotator, RotationRules=rules, RotateImmediately=False
    )

    assert _steps(client, "scheduled") == [["testSecret", created["ARN"], rotated["VersionId"]]]
    assert _stages(client, "scheduled") == {created["VersionId"]: ["AWSCURRENT"]}
    described = secrets.describe_secret(SecretId="scheduled")
    assert described["RotationEnabled"] is True
    assert described["RotationRules"] == {"AutomaticallyAfterDays": 10, **rules}
    assert secrets.get_secret_value(SecretId="scheduled")["SecretString"] == "v1"
