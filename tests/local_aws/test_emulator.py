"""The local AWS emulator: the API Gateway gaps it closes over moto, and its CLI.

Everything goes over HTTP with boto3, as Terraform's Go SDK would, against an
emulator on a free port.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from local_aws import HEALTH_PATH, LocalAws
from local_aws.private import free_port
from tests.support.emulator import client

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}],
    }
)


@pytest.fixture(scope="module")
def apigw(emulator):
    return boto3.client(
        "apigateway",
        endpoint_url=emulator.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def rest_api(apigw):
    """A REST API with one integrated method (deployable) and a first deployment."""
    api = apigw.create_rest_api(name="emulator-test")
    resource = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="keys")
    apigw.put_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(restApiId=api["id"], resourceId=resource["id"], httpMethod="POST", type="MOCK")
    deployment = apigw.create_deployment(restApiId=api["id"])
    return {"id": api["id"], "deployment_id": deployment["id"]}


def assert_error(excinfo, code: str, status: int) -> None:
    error = excinfo.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)


# --- client certificates ---------------------------------------------------


def test_client_certificate_lifecycle(apigw):
    created = apigw.generate_client_certificate(description="backend mTLS", tags={"team": "keys"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    certificate_id = created["clientCertificateId"]
    assert created["description"] == "backend mTLS"
    assert created["tags"] == {"team": "keys"}
    assert created["createdDate"] < created["expirationDate"]
    pem = x509.load_pem_x509_certificate(created["pemEncodedCertificate"].encode())
    assert pem.not_valid_after_utc == created["expirationDate"]

    fetched = apigw.get_client_certificate(clientCertificateId=certificate_id)
    assert fetched["pemEncodedCertificate"] == created["pemEncodedCertificate"]
    listed = apigw.get_client_certificates()["items"]
    assert certificate_id in [item["clientCertificateId"] for item in listed]

    updated = apigw.update_client_certificate(
        clientCertificateId=certificate_id,
        patchOperations=[{"op": "replace", "path": "/description", "value": "rotated"}],
    )
    assert updated["description"] == "rotated"
    assert apigw.get_client_certificate(clientCertificateId=certificate_id)["description"] == "rotated"

    deleted = apigw.delete_client_certificate(clientCertificateId=certificate_id)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(ClientError) as excinfo:
        apigw.get_client_certificate(clientCertificateId=certificate_id)
    assert_error(excinfo, "NotFoundException", 404)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_client_certificate(clientCertificateId="nope42"),
        lambda c: c.update_client_certificate(
            clientCertificateId="nope42", patchOperations=[{"op": "replace", "path": "/description", "value": "x"}]
        ),
        lambda c: c.delete_client_certificate(clientCertificateId="nope42"),
    ],
    ids=["get", "update", "delete"],
)
def test_unknown_client_certificate_is_not_found(apigw, call):
    with pytest.raises(ClientError) as excinfo:
        call(apigw)
    assert_error(excinfo, "NotFoundException", 404)
    assert excinfo.value.response["Error"]["Message"] == "Invalid Client Certificate identifier specified"


def test_client_certificate_tags_by_arn(apigw):
    certificate_id = apigw.generate_client_certificate(tags={"a": "1"})["clientCertificateId"]
    arn = f"arn:aws:apigateway:{REGION}::/clientcertificates/{certificate_id}"

    apigw.tag_resource(resourceArn=arn, tags={"b": "2"})
    assert apigw.get_tags(resourceArn=arn)["tags"] == {"a": "1", "b": "2"}
    apigw.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert apigw.get_client_certificate(clientCertificateId=certificate_id)["tags"] == {"b": "2"}


# --- tags on other resources ------------------------------------------------


def test_tags_on_rest_api_and_stage_arns(apigw, rest_api):
    api_arn = f"arn:aws:apigateway:{REGION}::/restapis/{rest_api['id']}"
    apigw.tag_resource(resourceArn=api_arn, tags={"env": "local"})
    assert apigw.get_rest_api(restApiId=rest_api["id"])["tags"] == {"env": "local"}

    apigw.create_stage(restApiId=rest_api["id"], stageName="v1", deploymentId=rest_api["deployment_id"])
    stage_arn = f"{api_arn}/stages/v1"
    apigw.tag_resource(resourceArn=stage_arn, tags={"tier": "api"})
    assert apigw.get_tags(resourceArn=stage_arn)["tags"] == {"tier": "api"}


def test_tags_on_unknown_arns(apigw):
    with pytest.raises(ClientError) as excinfo:
        apigw.get_tags(resourceArn=f"arn:aws:apigateway:{REGION}::/clientcertificates/nope42")
    assert_error(excinfo, "NotFoundException", 404)
    with pytest.raises(ClientError) as excinfo:
        apigw.get_tags(resourceArn=f"arn:aws:apigateway:{REGION}::/nosuchthings/x")
    assert_error(excinfo, "BadRequestException", 400)


# --- stages and deployments -------------------------------------------------


def test_stage_client_certificate_is_patched_and_read_back(apigw, rest_api):
    """CreateStage has no clientCertificateId; Terraform sets it with UpdateStage right after."""
    certificate_id = apigw.generate_client_certificate()["clientCertificateId"]
    created = apigw.create_stage(restApiId=rest_api["id"], stageName="prod", deploymentId=rest_api["deployment_id"])
    assert "clientCertificateId" not in created
    assert "clientCertificateId" not in apigw.get_stage(restApiId=rest_api["id"], stageName="prod")

    updated = apigw.update_stage(
        restApiId=rest_api["id"],
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/clientCertificateId", "value": certificate_id},
            {"op": "replace", "path": "/description", "value": "with mTLS"},
        ],
    )
    assert updated["clientCertificateId"] == certificate_id
    stage = apigw.get_stage(restApiId=rest_api["id"], stageName="prod")
    assert (stage["clientCertificateId"], stage["description"]) == (certificate_id, "with mTLS")
    assert [s.get("clientCertificateId") for s in apigw.get_stages(restApiId=rest_api["id"])["item"]] == [
        certificate_id
    ]

    apigw.update_stage(
        restApiId=rest_api["id"],
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/clientCertificateId", "value": ""}],
    )
    assert "clientCertificateId" not in apigw.get_stage(restApiId=rest_api["id"], stageName="prod")


def test_deployment_to_an_existing_stage_keeps_its_settings(apigw, rest_api):
    apigw.create_stage(restApiId=rest_api["id"], stageName="prod", deploymentId=rest_api["deployment_id"])
    apigw.update_stage(
        restApiId=rest_api["id"],
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/clientCertificateId", "value": "abc123"},
            {"op": "replace", "path": "/*/*/logging/loglevel", "value": "INFO"},
        ],
    )

    deployment = apigw.create_deployment(restApiId=rest_api["id"], stageName="prod")

    stage = apigw.get_stage(restApiId=rest_api["id"], stageName="prod")
    assert stage["deploymentId"] == deployment["id"]
    assert stage["clientCertificateId"] == "abc123"
    assert stage["methodSettings"]["*/*"]["loggingLevel"] == "INFO"


def test_deployment_in_use_by_a_stage_cannot_be_deleted(apigw, rest_api):
    old = rest_api["deployment_id"]
    apigw.create_stage(restApiId=rest_api["id"], stageName="prod", deploymentId=old)

    with pytest.raises(ClientError) as excinfo:
        apigw.delete_deployment(restApiId=rest_api["id"], deploymentId=old)
    assert_error(excinfo, "BadRequestException", 400)

    new = apigw.create_deployment(restApiId=rest_api["id"])["id"]
    apigw.update_stage(
        restApiId=rest_api["id"],
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/deploymentId", "value": new}],
    )
    deleted = apigw.delete_deployment(restApiId=rest_api["id"], deploymentId=old)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202


def test_deployment_created_for_a_stage_name_can_be_deleted_once_the_stage_moves(apigw, rest_api):
    named = apigw.create_deployment(restApiId=rest_api["id"], stageName="beta")["id"]
    apigw.update_stage(
        restApiId=rest_api["id"],
        stageName="beta",
        patchOperations=[{"op": "replace", "path": "/deploymentId", "value": rest_api["deployment_id"]}],
    )
    apigw.delete_deployment(restApiId=rest_api["id"], deploymentId=named)


def test_update_deployment_description(apigw, rest_api):
    updated = apigw.update_deployment(
        restApiId=rest_api["id"],
        deploymentId=rest_api["deployment_id"],
        patchOperations=[{"op": "replace", "path": "/description", "value": "second"}],
    )
    assert updated["description"] == "second"
    fetched = apigw.get_deployment(restApiId=rest_api["id"], deploymentId=rest_api["deployment_id"])
    assert fetched["description"] == "second"


# --- in-place updates of the API model ---------------------------------------

LAMBDA_URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:123456789012:function:f/invocations"
)


@pytest.fixture
def lambda_method(apigw):
    """POST /keys with a Lambda integration, a method response and an integration response."""
    api_id = apigw.create_rest_api(name="updates")["id"]
    root = apigw.get_resources(restApiId=api_id)["items"][0]["id"]
    resource_id = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="keys")["id"]
    where = {"restApiId": api_id, "resourceId": resource_id, "httpMethod": "POST"}
    apigw.put_method(**where, authorizationType="NONE")
    apigw.put_integration(
        **where,
        type="AWS",
        integrationHttpMethod="POST",
        uri=LAMBDA_URI,
        requestTemplates={"application/json": "old"},
        passthroughBehavior="NEVER",
    )
    apigw.put_method_response(**where, statusCode="201")
    apigw.put_integration_response(**where, statusCode="201", responseTemplates={"application/json": "old"})
    return where


def test_update_integration_patches_templates_and_fields(apigw, lambda_method):
    apigw.update_integration(
        **lambda_method,
        patchOperations=[
            {"op": "replace", "path": "/requestTemplates/application~1json", "value": "new"},
            {"op": "replace", "path": "/passthroughBehavior", "value": "WHEN_NO_TEMPLATES"},
            {"op": "replace", "path": "/timeoutInMillis", "value": "5000"},
        ],
    )
    integration = apigw.get_integration(**lambda_method)
    assert integration["requestTemplates"] == {"application/json": "new"}
    assert (integration["passthroughBehavior"], integration["timeoutInMillis"]) == ("WHEN_NO_TEMPLATES", 5000)


def test_update_integration_response_and_method(apigw, lambda_method):
    apigw.update_integration_response(
        **lambda_method,
        statusCode="201",
        patchOperations=[{"op": "replace", "path": "/selectionPattern", "value": "(?s)x.+"}],
    )
    assert apigw.get_integration_response(**lambda_method, statusCode="201")["selectionPattern"] == "(?s)x.+"
    apigw.update_method(
        **lambda_method, patchOperations=[{"op": "replace", "path": "/apiKeyRequired", "value": "true"}]
    )
    assert apigw.get_method(**lambda_method)["apiKeyRequired"] is True


def test_update_model_schema(apigw, lambda_method):
    api_id = lambda_method["restApiId"]
    apigw.create_model(restApiId=api_id, name="Body", contentType="application/json", schema="{}")
    apigw.update_model(
        restApiId=api_id,
        modelName="Body",
        patchOperations=[{"op": "replace", "path": "/schema", "value": '{"type": "object"}'}],
    )
    assert apigw.get_model(restApiId=api_id, modelName="Body")["schema"] == '{"type": "object"}'


def test_update_with_an_unknown_path_is_a_bad_request(apigw, lambda_method):
    with pytest.raises(ClientError) as excinfo:
        apigw.update_integration(
            **lambda_method, patchOperations=[{"op": "replace", "path": "/noSuchField", "value": "x"}]
        )
    assert_error(excinfo, "BadRequestException", 400)


# --- REST API policy ----------------------------------------------------------


def test_rest_api_policy_is_returned_escaped_like_aws(apigw):
    """The AWS provider reads the policy as the contents of a JSON string: json.loads('"' + policy + '"')."""
    api_id = apigw.create_rest_api(name="with-policy", policy=POLICY)["id"]
    returned = apigw.get_rest_api(restApiId=api_id)["policy"]
    assert returned.startswith('{\\"Version\\"')
    assert json.loads(f'"{returned}"') == POLICY

    replaced = json.dumps({"Version": "2012-10-17", "Statement": []})
    apigw.update_rest_api(restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": replaced}])
    assert json.loads(f'"{apigw.get_rest_api(restApiId=api_id)["policy"]}"') == replaced


# --- the in-process server ----------------------------------------------------


def test_health_route_names_the_emulator(emulator):
    with urllib.request.urlopen(emulator.endpoint + HEALTH_PATH, timeout=5) as response:
        assert json.load(response) == {"service": "local_aws", "pid": os.getpid()}


class _RecordingSocket(socket.socket):
    """A socket that keeps each write the server makes to it."""

    writes: list[bytes]

    def send(self, data, flags=0):
        self.writes.append(bytes(data))
        return super().send(data, flags)

    def sendall(self, data, flags=0):
        self.writes.append(bytes(data))
        return super().sendall(data, flags)


def test_a_response_leaves_in_one_write(emulator):
    """Headers sent ahead of their body let Terraform's Go client close the connection before the body, and its SDK
    then sends the call again: a create applied twice (see `local_aws.server._RequestHandler`)."""
    server_end, client_end = socket.socketpair()
    connection = _RecordingSocket(fileno=server_end.detach())
    connection.writes = []
    with client_end:
        client_end.sendall(f"GET {HEALTH_PATH} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        client_end.shutdown(socket.SHUT_WR)
        emulator._server.finish_request(connection, ("127.0.0.1", 0))  # serves this one connection, as a thread would
        received = client_end.recv(65536)
    connection.close()
    assert len(connection.writes) == 1, connection.writes
    assert connection.writes[0] == received
    head, body = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["service"] == "local_aws"


def test_local_aws_picks_a_free_port_and_releases_it():
    aws = LocalAws().start()
    port = aws.port
    assert port > 0 and aws.endpoint == f"http://127.0.0.1:{port}"
    aws.stop()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    aws.stop()  # idempotent


def test_local_aws_on_a_busy_port_raises():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(OSError, match="cannot listen"):
            LocalAws(listener.getsockname()[1]).start()


# --- CLI ------------------------------------------------------------------------


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local_aws", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
def cli_dir(tmp_path):
    """A working directory for the CLI; whatever it started there is stopped afterwards."""
    yield tmp_path
    run_cli(tmp_path, "stop")


def test_cli_start_status_stop_round_trip(cli_dir):
    port = str(free_port())

    started = run_cli(cli_dir, "start", "--port", port)
    assert started.returncode == 0, started.stderr
    state = json.loads((cli_dir / ".local-aws" / "local-aws.pid").read_text())
    assert state["port"] == int(port)
    assert (cli_dir / ".local-aws" / "local-aws.log").exists()

    apigw = boto3.client(
        "apigateway",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert apigw.generate_client_certificate()["clientCertificateId"]

    status = run_cli(cli_dir, "status", "--port", port)
    assert status.returncode == 0 and f"pid {state['pid']}" in status.stdout

    again = run_cli(cli_dir, "start", "--port", port)
    assert again.returncode == 0 and "reusing" in again.stdout

    stopped = run_cli(cli_dir, "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not (cli_dir / ".local-aws" / "local-aws.pid").exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(port))) != 0

    assert run_cli(cli_dir, "stop").returncode == 0  # idempotent
    assert run_cli(cli_dir, "status", "--port", port).returncode == 3


def test_cli_start_refuses_a_port_held_by_something_else(cli_dir):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = str(listener.getsockname()[1])

        result = run_cli(cli_dir, "start", "--port", port)

    assert result.returncode == 1
    assert f"port {port} is in use by something that is not local_aws" in result.stderr
    assert not (cli_dir / ".local-aws" / "local-aws.pid").exists()


def test_cli_serve_stops_on_ctrl_c(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "local_aws", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving on" in server.stdout.readline()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()


# --- S3 bucket policies ---------------------------------------------------------


def _s3(emulator):
    return boto3.client(
        "s3",
        endpoint_url=emulator.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _deny_all(bucket: str, condition: dict | None) -> str:
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}/*"]}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_conditional_bucket_policy_deny_is_not_applied_unconditionally(emulator):
    s3 = _s3(emulator)
    s3.create_bucket(Bucket="tls-only")
    s3.put_bucket_policy(Bucket="tls-only", Policy=_deny_all("tls-only", {"Bool": {"aws:SecureTransport": "false"}}))
    s3.put_object(Bucket="tls-only", Key="state", Body=b"{}")
    assert s3.get_object(Bucket="tls-only", Key="state")["Body"].read() == b"{}"


def test_unconditional_bucket_policy_deny_still_denies(emulator):
    s3 = _s3(emulator)
    s3.create_bucket(Bucket="deny-all")
    s3.put_bucket_policy(Bucket="deny-all", Policy=_deny_all("deny-all", None))
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="deny-all", Key="state", Body=b"{}")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_deleting_an_api_key_removes_it_from_its_usage_plans(apigw):
    plan = apigw.create_usage_plan(name="delete-key-plan")["id"]
    key = apigw.create_api_key(name="doomed", enabled=True)["id"]
    apigw.create_usage_plan_key(usagePlanId=plan, keyId=key, keyType="API_KEY")
    apigw.delete_api_key(apiKey=key)
    assert apigw.get_usage_plan_keys(usagePlanId=plan)["items"] == []


def test_usage_plan_patches_store_numbers_like_aws(apigw):
    plan = apigw.create_usage_plan(
        name="patched-plan", throttle={"rateLimit": 5, "burstLimit": 10}, quota={"limit": 500, "period": "DAY"}
    )["id"]
    apigw.update_usage_plan(
        usagePlanId=plan,
        patchOperations=[
            {"op": "replace", "path": "/throttle/rateLimit", "value": "12.5"},
            {"op": "replace", "path": "/throttle/burstLimit", "value": "30"},
            {"op": "replace", "path": "/quota/limit", "value": "700"},
            {"op": "replace", "path": "/quota/offset", "value": "1"},
            {"op": "replace", "path": "/quota/period", "value": "WEEK"},
            {"op": "replace", "path": "/name", "value": "renamed-plan"},
        ],
    )
    # Read the wire JSON itself: botocore turns "700" into 700, the Go SDK (Terraform) fails on it.
    request = urllib.request.Request(
        f"{apigw.meta.endpoint_url}/usageplans/{plan}",
        # The credential scope is how the emulator routes a request to its service.
        headers={"Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/apigateway/aws4_request"},
    )
    with urllib.request.urlopen(request) as answer:
        read = json.load(answer)
    assert read["throttle"] == {"rateLimit": 12.5, "burstLimit": 30}
    assert read["quota"] == {"limit": 700, "offset": 1, "period": "WEEK"}
    assert type(read["quota"]["limit"]) is int and type(read["throttle"]["burstLimit"]) is int
    assert read["name"] == "renamed-plan"


def test_usage_plan_patch_with_a_non_number_is_a_bad_request(apigw):
    plan = apigw.create_usage_plan(name="bad-patch-plan")["id"]
    with pytest.raises(ClientError) as excinfo:
        apigw.update_usage_plan(
            usagePlanId=plan, patchOperations=[{"op": "replace", "path": "/quota/limit", "value": "lots"}]
        )
    assert_error(excinfo, "BadRequestException", 400)


# --- DynamoDB -----------------------------------------------------------------


def test_update_table_applies_an_sse_specification(emulator):
    dynamodb, kms = client(emulator, "dynamodb"), client(emulator, "kms")
    dynamodb.create_table(
        TableName="adopted-lock",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert "SSEDescription" not in dynamodb.describe_table(TableName="adopted-lock")["Table"]
    key = kms.create_key()["KeyMetadata"]["Arn"]
    dynamodb.update_table(
        TableName="adopted-lock", SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}
    )
    described = dynamodb.describe_table(TableName="adopted-lock")["Table"]["SSEDescription"]
    assert (described["Status"], described["SSEType"], described["KMSMasterKeyArn"]) == ("ENABLED", "KMS", key)
    dynamodb.update_table(TableName="adopted-lock", SSESpecification={"Enabled": False})
    assert "SSEDescription" not in dynamodb.describe_table(TableName="adopted-lock")["Table"]


def test_switching_a_table_to_on_demand_drops_its_capacity(emulator):
    dynamodb = client(emulator, "dynamodb")
    dynamodb.create_table(
        TableName="provisioned-lock",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    dynamodb.update_table(TableName="provisioned-lock", BillingMode="PAY_PER_REQUEST")
    table = dynamodb.describe_table(TableName="provisioned-lock")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    throughput = table["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (0, 0)
