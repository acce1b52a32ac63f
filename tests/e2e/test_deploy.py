"""Deploy both stacks to a private emulator, read the six fixes back from AWS, re-plan, rotate, destroy.

The JSON applied is the default configuration without its WAF (`no_waf_synth`, API-key rotation on), copied byte
for byte; only the environment differs. Nothing here is about the WAF (`no_waf_config` says what it costs): the README
walkthrough deploys the default settings with it, and test_hardened.py reads it back. The emulator really runs the
rotation Lambda, so the first rotation during the apply creates the live key. Tests run in file order on one
deployment: read back, plan, rotate, destroy last.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from constructs_lib import api_contract
from tests.support.emulator import client, emulator
from tests.support.synth import SERVICE_STACK, STATE_STACK
from tools.local import LocalTarget, synthesized_stacks

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(150)]


@pytest.fixture(scope="module")
def target(no_waf_synth, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("local-deploy")
    with emulator(workdir / "emulator.log") as endpoint:
        target = LocalTarget(endpoint, no_waf_synth.outdir, workdir)
        target.deploy_all()
        yield target


@pytest.fixture(scope="module")
def stacks(target):
    return {stack.name: stack for stack in synthesized_stacks(target.synth_dir)}


@pytest.fixture(scope="module")
def outputs(target, stacks):
    return {name: output["value"] for name, output in target.outputs(stacks[SERVICE_STACK]).items()}


def current_key(target, outputs) -> dict:
    """The API key rotation made current: `{id, value, usage_plan_ids, ...}` from the secret."""
    secret = client(target, "secretsmanager").get_secret_value(SecretId=outputs["api_key_secret_arn"])
    return json.loads(secret["SecretString"])


def live_keys(target) -> dict[str, dict]:
    return {key["id"]: key for key in client(target, "apigateway").get_api_keys(includeValues=True)["items"]}


def test_applied_json_is_byte_for_byte_the_synth(target, stacks):
    for name in stacks:
        applied = (target.workdir / "stacks" / name / "cdk.tf.json").read_bytes()
        synthesized = (target.synth_dir / "stacks" / name / "cdk.tf.json").read_bytes()
        assert hashlib.sha256(applied).digest() == hashlib.sha256(synthesized).digest()


def test_fix_1_api_key_is_in_the_usage_plan(target, outputs):
    keys = client(target, "apigateway").get_usage_plan_keys(usagePlanId=outputs["usage_plan_id"])["items"]
    assert [(key["id"], key["type"]) for key in keys] == [(current_key(target, outputs)["id"], "API_KEY")]


def test_fix_2_integration_carries_the_mapping_template(target, outputs):
    apigw = client(target, "apigateway")
    resources = apigw.get_resources(restApiId=outputs["rest_api_id"])["items"]
    keys = next(r for r in resources if r.get("pathPart") == api_contract.RESOURCE_PATH)
    integration = apigw.get_integration(restApiId=outputs["rest_api_id"], resourceId=keys["id"], httpMethod="POST")
    assert integration["requestTemplates"] == {"application/json": api_contract.REQUEST_TEMPLATE}
    assert integration["type"] == "AWS"
    method = apigw.get_method(restApiId=outputs["rest_api_id"], resourceId=keys["id"], httpMethod="POST")
    assert method["apiKeyRequired"] is True


def test_fix_3_outputs_describe_the_deployment(target, stacks, outputs):
    raw = target.outputs(stacks[SERVICE_STACK])
    assert all(output["value"] != current_key(target, outputs)["value"] for output in raw.values())
    apigw = client(target, "apigateway")
    api = apigw.get_rest_api(restApiId=outputs["rest_api_id"])
    assert api["name"] == "kms-key-generator"
    assert outputs["key_endpoint_url"] == f"{outputs['stage_invoke_url']}/keys"
    secret = client(target, "secretsmanager").describe_secret(SecretId=outputs["api_key_secret_arn"])
    assert secret["Name"] == outputs["api_key_secret_name"] and secret["RotationEnabled"] is True
    rotation = client(target, "lambda").get_function(FunctionName=outputs["rotation_function_name"])
    assert rotation["Configuration"]["FunctionArn"] == outputs["rotation_function_arn"]
    function = client(target, "lambda").get_function(FunctionName=outputs["lambda_function_name"])
    assert function["Configuration"]["FunctionArn"] == outputs["lambda_function_arn"]
    assert function["Configuration"]["Role"] == outputs["execution_role_arn"]
    assert outputs["account_id"] == "123456789012"
    state = {name: o["value"] for name, o in target.outputs(stacks[STATE_STACK]).items()}
    assert state["state_bucket_name"] == outputs["state_bucket"]
    assert state["lock_table_name"] == outputs["state_lock_table"]


def test_fix_4_log_groups_never_expire(target, outputs):
    logs = client(target, "logs")
    for name in outputs["log_group_names"]:
        (group,) = [
            g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name
        ]
        assert "retentionInDays" not in group, group


def test_fix_5_ssm_parameter_holds_the_live_api_key(target, outputs):
    parameter = client(target, "ssm").get_parameter(Name=outputs["ssm_parameter_name"], WithDecryption=True)[
        "Parameter"
    ]
    assert parameter["Type"] == "SecureString"
    current = current_key(target, outputs)
    live = client(target, "apigateway").get_api_key(apiKey=current["id"], includeValue=True)
    assert live["enabled"] is True
    assert parameter["Value"] == live["value"] == current["value"]
    described = client(target, "ssm").describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [outputs["ssm_parameter_name"]]}]
    )["Parameters"][0]
    assert described["KeyId"] == outputs["ssm_kms_key_arn"]


def test_fix_6_stage_has_the_client_certificate(target, outputs):
    apigw = client(target, "apigateway")
    stage = apigw.get_stage(restApiId=outputs["rest_api_id"], stageName=outputs["stage_name"])
    assert stage["clientCertificateId"] == outputs["client_certificate_id"]
    assert apigw.get_client_certificate(clientCertificateId=outputs["client_certificate_id"])["pemEncodedCertificate"]


def test_stage_writes_access_logs_to_a_never_expiring_group(target, outputs):
    stage = client(target, "apigateway").get_stage(restApiId=outputs["rest_api_id"], stageName=outputs["stage_name"])
    destination = stage["accessLogSettings"]["destinationArn"]
    (name,) = [n for n in outputs["log_group_names"] if n.startswith("/aws/apigateway/")]
    assert destination in outputs["log_group_arns"] and destination.endswith(name)
    assert '"tenant":"$context.authorizer.tenant_id"' in stage["accessLogSettings"]["format"]


def test_state_bucket_is_hardened_as_deployed(target, outputs):
    s3 = client(target, "s3")
    bucket = outputs["state_bucket"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    # The service's state really went to the bucket, through the S3 backend.
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] >= 1


def test_second_plan_shows_no_changes(target, stacks):
    for stack in stacks.values():
        result = target.plan(stack)
        assert result.returncode == 0, result.stdout + result.stderr


def test_rotating_twice_at_once_keeps_every_key_in_its_grace_and_no_drift(target, stacks, outputs):
    """Two rotate-secret calls right after the apply's rotation: within rotation.grace_hours no replaced key is
    deleted, so all three work (deletion once the grace has passed is tested under moto with a virtual clock)."""
    secrets, apigw = client(target, "secretsmanager"), client(target, "apigateway")
    first = current_key(target, outputs)["id"]
    secrets.rotate_secret(SecretId=outputs["api_key_secret_arn"])
    second = current_key(target, outputs)["id"]
    secrets.rotate_secret(SecretId=outputs["api_key_secret_arn"])
    current = current_key(target, outputs)
    assert len({first, second, current["id"]}) == 3
    assert set(live_keys(target)) == {first, second, current["id"]}
    assert all(key["enabled"] for key in live_keys(target).values())
    plan_keys = {key["id"] for key in apigw.get_usage_plan_keys(usagePlanId=outputs["usage_plan_id"])["items"]}
    assert plan_keys == {first, second, current["id"]}
    parameter = client(target, "ssm").get_parameter(Name=outputs["ssm_parameter_name"], WithDecryption=True)
    assert parameter["Parameter"]["Value"] == current["value"]
    result = target.plan(stacks[SERVICE_STACK])
    assert result.returncode == 0, result.stdout + result.stderr


def test_destroy_leaves_nothing_of_the_service_behind(target, stacks, outputs):
    target.destroy(stacks[SERVICE_STACK])
    apigw = client(target, "apigateway")
    assert apigw.get_rest_apis()["items"] == []
    assert apigw.get_api_keys()["items"] == []
    assert apigw.get_usage_plans()["items"] == []
    assert apigw.get_client_certificates()["items"] == []
    assert client(target, "lambda").list_functions()["Functions"] == []
    assert client(target, "logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"] == []
    assert client(target, "ssm").describe_parameters()["Parameters"] == []
    secret = client(target, "secretsmanager").describe_secret(SecretId=outputs["api_key_secret_arn"])
    assert "DeletedDate" in secret  # scheduled for deletion after the recovery window, as on AWS
    roles = [role["RoleName"] for role in client(target, "iam").list_roles()["Roles"]]
    assert outputs["execution_role_name"] not in roles
    # KMS keys cannot vanish at once: AWS schedules them for deletion.
    kms = client(target, "kms")
    assert kms.describe_key(KeyId=outputs["ssm_kms_key_arn"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    # The remote-state stack is still there and can be destroyed once the service state is emptied.
    target.empty_state_bucket(stacks[SERVICE_STACK])
    target.destroy(stacks[STATE_STACK])
    assert client(target, "s3").list_buckets()["Buckets"] == []
    assert client(target, "dynamodb").list_tables()["TableNames"] == []
