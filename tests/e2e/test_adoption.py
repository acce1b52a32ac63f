"""Adopting a live deployment of the original Terraform modules: the first apply imports, destroys nothing.

The original deployment is created with boto3 the way the old modules built it, defects included: a REST
API with `POST /keys` (API key required) and an AWS integration to the Lambda, a deployment and stage
`v1`, a usage plan on that stage, an API key left out of the plan (defect 1), a log group that expires
(defect 4), an SSM SecureString holding a literal (defect 5), the execution role and the function from a
small zip, and the API Gateway invoke permission. Settings then adopt those objects (static-key mode),
the remote-state stack is deployed fresh and the service stack is planned and applied: Terraform imports,
updates in place, destroys nothing, and afterwards plans no changes, with `[adopt]` or without it; an
import block whose object is gone fails the plan. On a second emulator, in the background, the remote-state
stack adopts the original state bucket and lock table. Tests run in file order on one deployment.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.emulator import client, emulator
from tests.support.synth import SERVICE_STACK, STATE_STACK, Synthesizer
from tools.local import LocalTarget, synthesized_stacks
from tools.terraform import terraform

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(102)]

FUNCTION = "kms-key-generator"
ROLE = "kms-key-generator-lambda-execution"  # the name this app gives it, so it must be adopted, not created
LOG_GROUP = f"/aws/lambda/{FUNCTION}"
PARAMETER = f"/APIGateway/APIKeys/{FUNCTION}"
ORIGINAL_RETENTION_DAYS = 14
ORIGINAL_PARAMETER_VALUE = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  # the original's literal from `locals` (defect 5)
ORIGINAL_CODE = "def lambda_handler(event, context):\n    return {'original': True}\n"
# Every import block the adoption settings below produce, by resource type.
ADOPTED_TYPES = [
    "aws_api_gateway_api_key",
    "aws_api_gateway_method",
    "aws_api_gateway_resource",
    "aws_api_gateway_rest_api",
    "aws_api_gateway_stage",
    "aws_api_gateway_usage_plan",
    "aws_cloudwatch_log_group",
    "aws_iam_role",
    "aws_lambda_function",
    "aws_ssm_parameter",
]
SUMMARY = re.compile(r"Plan: (\d+) to import, (\d+) to add, (\d+) to change, (\d+) to destroy\.")
APPLIED = re.compile(r"Apply complete! Resources: (\d+) imported, (\d+) added, (\d+) changed, (\d+) destroyed\.")
# Everything but `[adopt]`: the configuration to keep once the adoption is applied.
SETTINGS = """\
[rotation]
# The original's static key: Terraform owns it (adopting an API key requires this).
enabled = false

[waf]
# New, not adopted, and not what this module is about (`no_waf_config` says what its web ACL costs).
enabled = false
"""
# The original remote_backend modules' bucket and table, adopted by the remote-state stack.
STATE_BUCKET, LOCK_TABLE = "kms-key-generator-tfstate", "kms-key-generator-tflock"
OLD_STATE_KEY = "terraform.tfstate"  # where the old modules kept their state: not our `state.key`
OLD_STATE = b'{"version": 4, "serial": 7}'
STATE_ADOPTION = f'[adopt]\nstate_bucket = "{STATE_BUCKET}"\nstate_lock_table = "{LOCK_TABLE}"\n'


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", source)
    return buffer.getvalue()


def create_original_deployment(target: LocalTarget) -> dict[str, str]:
    """The original modules' resources, created as they created them; returns the ids `[adopt]` needs."""
    iam, lambda_, logs = client(target, "iam"), client(target, "lambda"), client(target, "logs")
    ssm, kms, apigw = client(target, "ssm"), client(target, "kms"), client(target, "apigateway")

    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.put_retention_policy(logGroupName=LOG_GROUP, retentionInDays=ORIGINAL_RETENTION_DAYS)  # defect 4
    role = iam.create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]
    function = lambda_.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": _zip(ORIGINAL_CODE)},
        Timeout=10,
    )
    ssm_key = kms.create_key(Description="SSM parameter key (original ssm module)")["KeyMetadata"]
    ssm.put_parameter(
        Name=PARAMETER, Type="SecureString", Value=ORIGINAL_PARAMETER_VALUE, KeyId=ssm_key["Arn"]
    )  # defect 5: a literal, not the key

    api = apigw.create_rest_api(name=FUNCTION, apiKeySource="HEADER", endpointConfiguration={"types": ["REGIONAL"]})
    resource = apigw.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="keys")
    apigw.put_method(
        restApiId=api["id"], resourceId=resource["id"], httpMethod="POST", authorizationType="NONE", apiKeyRequired=True
    )
    invoke_arn = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function['FunctionArn']}/invocations"
    apigw.put_integration(  # defect 2: no mapping template
        restApiId=api["id"],
        resourceId=resource["id"],
        httpMethod="POST",
        type="AWS",
        integrationHttpMethod="POST",
        uri=invoke_arn,
    )
    apigw.create_deployment(restApiId=api["id"], stageName="v1")
    lambda_.add_permission(
        FunctionName=FUNCTION,
        StatementId="AllowExecutionFromAPIGateway",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api['id']}/*/POST/keys",
    )
    plan = apigw.create_usage_plan(
        name=f"{FUNCTION}-usage-plan",
        apiStages=[{"apiId": api["id"], "stage": "v1"}],
        throttle={"rateLimit": 5, "burstLimit": 10},
        quota={"limit": 500, "period": "DAY"},
    )
    key = apigw.create_api_key(name=f"{FUNCTION}-api-key", enabled=True)  # defect 1: never joins the plan
    return {
        "rest_api_id": api["id"],
        "resource_id": resource["id"],
        "usage_plan_id": plan["id"],
        "api_key_id": key["id"],
    }


def adopt_section(ids: dict[str, str]) -> str:
    """The `[adopt]` section a user writes from the old state (`terraform state show` of each resource)."""
    return (
        "[adopt]\n"
        + "".join(f'{key} = "{value}"\n' for key, value in ids.items())
        + f'log_group_names = ["{LOG_GROUP}"]\n'
        + f'ssm_parameter_name = "{PARAMETER}"\n'
        + f'lambda_function_name = "{FUNCTION}"\n'
        + f'execution_role_name = "{ROLE}"\n'
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("adoption")


def synth_settings(synthesizer: Synthesizer, workdir: Path, name: str, settings: str) -> Path:
    """Write `settings` to `<workdir>/<name>.toml` and synthesize them into `<workdir>/synth-<name>`."""
    config = workdir / f"{name}.toml"
    config.write_text(settings)
    return synthesizer.synth(workdir / f"synth-{name}", config).outdir


@pytest.fixture(scope="module")
def adopted(workdir, synthesizer, state_backend_adoption):
    """The original deployment on a private emulator, the adoption synth, and the synth without `[adopt]`.
    (Requesting `state_backend_adoption` starts it in the background first.)"""
    with emulator(workdir / "emulator.log") as endpoint:
        originals = create_original_deployment(LocalTarget(endpoint, workdir, workdir))
        adopt = synth_settings(synthesizer, workdir, "adopt", SETTINGS + adopt_section(originals))
        target = LocalTarget(endpoint, adopt, workdir / "work")
        before = _snapshot(target, originals)
        yield {
            "target": target,
            "plain": LocalTarget(endpoint, synth_settings(synthesizer, workdir, "plain", SETTINGS), workdir / "work"),
            "originals": originals,
            "before": before,
            "stacks": {stack.name: stack for stack in synthesized_stacks(target.synth_dir)},
        }


def _snapshot(target: LocalTarget, ids: dict[str, str]) -> dict:
    apigw = client(target, "apigateway")
    key = apigw.get_api_key(apiKey=ids["api_key_id"], includeValue=True)
    return {
        "api_key_value": key["value"],
        "rest_api_ids": [api["id"] for api in apigw.get_rest_apis()["items"]],
        "usage_plan_ids": [plan["id"] for plan in apigw.get_usage_plans()["items"]],
        "api_key_ids": [key["id"] for key in apigw.get_api_keys()["items"]],
        "function_arn": client(target, "lambda").get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"],
    }


@pytest.fixture(scope="module")
def plan(adopted):
    """The service stack's first plan, saved and shown as JSON, after a fresh remote-state stack."""
    target, stacks = adopted["target"], adopted["stacks"]
    assert "import" not in stacks[STATE_STACK].config  # the state bucket and table are new here
    target.apply(stacks[STATE_STACK])
    workdir = target.init(stacks[SERVICE_STACK])
    text = terraform("plan", "-input=false", "-no-color", "-out=adopt.tfplan", cwd=workdir, env=target.env()).stdout
    shown = terraform("show", "-json", "adopt.tfplan", cwd=workdir, env=target.env()).stdout
    (target.workdir / "adopt.plan.txt").write_text(text)  # kept for whoever reads a failure
    return {"text": text, "json": json.loads(shown), "dir": workdir}


@pytest.fixture(scope="module")
def applied(adopted, plan):
    """`terraform apply` of exactly the plan reviewed above."""
    target = adopted["target"]
    result = terraform("apply", "-input=false", "-no-color", "adopt.tfplan", cwd=plan["dir"], env=target.env())
    return result.stdout


@pytest.fixture(scope="module")
def outputs(adopted, applied) -> dict:
    target = adopted["target"]
    return {name: o["value"] for name, o in target.outputs(adopted["stacks"][SERVICE_STACK]).items()}


def test_synth_imports_every_adopted_resource_with_its_id(adopted):
    ids = adopted["originals"]
    imports = {block["to"]: block["id"] for block in adopted["stacks"][SERVICE_STACK].config["import"]}
    assert sorted(address.split(".")[0] for address in imports) == ADOPTED_TYPES
    by_type = {address.split(".")[0]: import_id for address, import_id in imports.items()}
    api, resource = ids["rest_api_id"], ids["resource_id"]
    assert by_type["aws_api_gateway_rest_api"] == api
    assert by_type["aws_api_gateway_resource"] == f"{api}/{resource}"
    assert by_type["aws_api_gateway_method"] == f"{api}/{resource}/POST"
    assert by_type["aws_api_gateway_stage"] == f"{api}/v1"
    assert by_type["aws_api_gateway_api_key"] == ids["api_key_id"]
    assert by_type["aws_api_gateway_usage_plan"] == ids["usage_plan_id"]


def test_plan_imports_and_destroys_nothing(adopted, plan):
    changes = plan["json"]["resource_changes"]
    deleting = [c["address"] for c in changes if "delete" in c["change"]["actions"]]
    assert deleting == []
    importing = sorted(c["type"] for c in changes if c["change"].get("importing"))
    assert importing == ADOPTED_TYPES
    (summary,) = SUMMARY.findall(plan["text"])
    assert (int(summary[0]), int(summary[3])) == (len(ADOPTED_TYPES), 0), summary


def test_apply_reports_the_imports_and_nothing_destroyed(applied):
    (counts,) = APPLIED.findall(applied)
    assert (int(counts[0]), int(counts[3])) == (len(ADOPTED_TYPES), 0), counts


def test_live_api_and_key_keep_their_ids_and_value(adopted, outputs):
    ids, before = adopted["originals"], adopted["before"]
    assert outputs["rest_api_id"] == ids["rest_api_id"]
    assert outputs["api_key_id"] == ids["api_key_id"]
    assert outputs["usage_plan_id"] == ids["usage_plan_id"]
    assert outputs["lambda_function_arn"] == before["function_arn"]
    after = _snapshot(adopted["target"], ids)
    # Nothing was replaced: no second API, plan or key next to the adopted ones.
    assert after == before


def test_api_key_is_now_in_the_usage_plan(adopted, outputs):
    keys = client(adopted["target"], "apigateway").get_usage_plan_keys(usagePlanId=outputs["usage_plan_id"])["items"]
    assert [(key["id"], key["type"]) for key in keys] == [(adopted["originals"]["api_key_id"], "API_KEY")]


def test_ssm_parameter_now_holds_the_api_key(adopted, outputs):
    parameter = client(adopted["target"], "ssm").get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]
    assert parameter["Value"] == adopted["before"]["api_key_value"] != ORIGINAL_PARAMETER_VALUE


def test_log_group_now_never_expires(adopted, outputs):
    groups = client(adopted["target"], "logs").describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
    (group,) = [g for g in groups if g["logGroupName"] == LOG_GROUP]
    assert "retentionInDays" not in group


def test_adopted_api_serves_our_contract(adopted, outputs):
    apigw, api_id = client(adopted["target"], "apigateway"), outputs["rest_api_id"]
    resource = adopted["originals"]["resource_id"]
    integration = apigw.get_integration(restApiId=api_id, resourceId=resource, httpMethod="POST")
    assert "application/json" in integration["requestTemplates"]
    assert integration["passthroughBehavior"] == "NEVER"  # overwritten, not replaced: see adoption.py
    stage = apigw.get_stage(restApiId=api_id, stageName="v1")
    assert stage["clientCertificateId"] == outputs["client_certificate_id"]
    function = client(adopted["target"], "lambda").get_function(FunctionName=FUNCTION)["Configuration"]
    assert function["Handler"] == "handler.lambda_handler" and function["Role"] == outputs["execution_role_arn"]


def test_second_plan_shows_no_changes_with_the_import_blocks_still_there(adopted, outputs):
    result = adopted["target"].plan(adopted["stacks"][SERVICE_STACK])
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_changes_once_adopt_is_removed_from_the_settings(adopted, outputs):
    plain = adopted["plain"]
    stacks = {stack.name: stack for stack in synthesized_stacks(plain.synth_dir)}
    assert "import" not in stacks[SERVICE_STACK].config
    for stack in stacks.values():
        result = plain.plan(stack)
        assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_block_whose_object_is_gone_fails_the_plan(adopted, outputs):
    # As after a `terraform destroy`, or with the same settings in a new account: why `[adopt]` goes once applied.
    target, stack = adopted["target"], adopted["stacks"][SERVICE_STACK]
    address = next(block["to"] for block in stack.config["import"] if block["id"] == LOG_GROUP)
    terraform("state", "rm", address, cwd=target.init(stack), env=target.env())
    client(target, "logs").delete_log_group(logGroupName=LOG_GROUP)
    result = target.plan(stack)
    assert result.returncode == 1
    assert "Cannot import non-existent remote object" in result.stderr
    assert adopted["plain"].plan(stack).returncode == 2  # without `[adopt]`: the group is simply created


def adopt_original_state_backend(synth_dir: Path, workdir: Path) -> dict:
    """On its own emulator: the original modules' state bucket and lock table, then the remote-state stack
    adopting them. Returns what the test asserts on."""
    workdir.mkdir(parents=True, exist_ok=True)
    with emulator(workdir / "emulator.log") as endpoint:
        target = LocalTarget(endpoint, synth_dir, workdir)
        s3, dynamodb = client(target, "s3"), client(target, "dynamodb")
        s3.create_bucket(Bucket=STATE_BUCKET)
        s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=STATE_BUCKET, Key=OLD_STATE_KEY, Body=OLD_STATE)
        dynamodb.create_table(
            TableName=LOCK_TABLE,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PROVISIONED",
            ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        )
        stack = next(stack for stack in synthesized_stacks(synth_dir) if stack.name == STATE_STACK)
        applied = terraform(
            "apply", "-auto-approve", "-input=false", "-no-color", cwd=target.init(stack), env=target.env()
        ).stdout
        (workdir / "apply.txt").write_text(applied)  # kept for whoever reads a failure
        return {
            "imports": stack.config["import"],
            "applied": applied,
            "old_state": s3.get_object(Bucket=STATE_BUCKET, Key=OLD_STATE_KEY)["Body"].read(),
            "encryption": s3.get_bucket_encryption(Bucket=STATE_BUCKET)["ServerSideEncryptionConfiguration"],
            "table": dynamodb.describe_table(TableName=LOCK_TABLE)["Table"],
            "second_plan": target.plan(stack),
        }


@pytest.fixture(scope="module")
def state_backend_adoption(synthesizer, workdir) -> Future:
    """Runs in the background from the module's start: updating the adopted table's encryption alone waits
    30 s in the provider (a fixed delay before it polls), time the service-stack tests use meanwhile."""
    pool = ThreadPoolExecutor(max_workers=1)
    synth_dir = synth_settings(synthesizer, workdir, "state", SETTINGS + STATE_ADOPTION)
    future = pool.submit(adopt_original_state_backend, synth_dir, workdir / "state-backend")
    yield future
    pool.shutdown(wait=True)


def test_original_state_bucket_and_lock_table_are_adopted(state_backend_adoption):
    result = state_backend_adoption.result(timeout=600)
    assert sorted(block["id"] for block in result["imports"]) == sorted([STATE_BUCKET, LOCK_TABLE])
    (counts,) = APPLIED.findall(result["applied"])
    assert (int(counts[0]), int(counts[3])) == (2, 0), counts
    # The bucket kept its objects (the old modules' state among them) and is hardened in place.
    assert result["old_state"] == OLD_STATE
    assert result["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    table = result["table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["SSEType"] == "KMS"
    second = result["second_plan"]
    assert second.returncode == 0, second.stdout + second.stderr
