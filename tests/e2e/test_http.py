"""The clients' path over HTTP: requests to the locally deployed API, answered as API Gateway would.

The stacks of tests/fixtures/http.toml (the default service plus four tenants in plans with small limits, and a
resource policy admitting 127.0.0.1 only) are applied unchanged to a private emulator; every request goes over
TCP to `/restapis/<id>/<stage>/_user_request_/keys` and what it changed is read back with boto3.

Limits are asserted as a token bucket guarantees them, whatever the machine's speed: after the bucket has been
idle for burst/rate seconds it is full, so the first `burst` requests pass; over `t` seconds at most
`burst + rate * t` pass. Requests meant only to spend throttle or quota carry a body the validator refuses: API
Gateway checks the usage plan before it validates, so they count without creating keys.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.emulator import client, emulator
from tests.support.http import Answer, send, user_request_url
from tests.support.synth import PROJECT_ROOT, SERVICE_STACK
from tools.local import LocalTarget, _print_outputs, synthesized_stacks
from tools.request_key import Response, Unreachable, send_with_retries

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(132)]

CONFIG = PROJECT_ROOT / "tests" / "fixtures" / "http.toml"
ACCOUNT = "123456789012"
STAGE_RATE, STAGE_BURST = 5.0, 10  # constructs_lib.settings: the stage's default throttle
NARROW_RATE, NARROW_BURST = 1.0, 2  # tests/fixtures/http.toml [usage_plans.narrow]
TINY_QUOTA = 4  # tests/fixtures/http.toml [usage_plans.tiny]
ALPHA_ACCOUNT = "111122223333"  # tests/fixtures/http.toml: alpha's only account
INVALID = {"account": ACCOUNT}  # refused by the request validator, after the usage-plan checks


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, synthesizer):
    outdir = synthesizer.synth(tmp_path_factory.mktemp("synth-http") / "out", CONFIG).outdir
    workdir = tmp_path_factory.mktemp("http-deploy")
    with emulator(workdir / "emulator.log") as endpoint:
        target = LocalTarget(endpoint, outdir, workdir)
        target.deploy_all()
        service = next(s for s in synthesized_stacks(outdir) if s.name == SERVICE_STACK)
        outputs = {name: output["value"] for name, output in target.outputs(service).items()}
        yield target, outputs


@pytest.fixture(scope="module")
def target(deployment) -> LocalTarget:
    return deployment[0]


@pytest.fixture(scope="module")
def outputs(deployment) -> dict:
    return deployment[1]


@pytest.fixture(scope="module")
def url(target, outputs) -> str:
    return user_request_url(target.endpoint, outputs["rest_api_id"], outputs["stage_name"])


@pytest.fixture(scope="module")
def service_key(target, outputs) -> str:
    """The live service key, as a client gets it: from the SSM SecureString."""
    parameter = client(target, "ssm").get_parameter(Name=outputs["ssm_parameter_name"], WithDecryption=True)
    return parameter["Parameter"]["Value"]


@pytest.fixture(scope="module")
def tenant_keys(target, outputs) -> dict[str, str]:
    apigw = client(target, "apigateway")
    ids = outputs["tenant_api_key_ids"]
    return {tenant: apigw.get_api_key(apiKey=key_id, includeValue=True)["value"] for tenant, key_id in ids.items()}


def request_body(alias: str, key_usage: str = "ENCRYPT_DECRYPT", **overrides) -> dict:
    return {
        "account": ACCOUNT,
        "region": "us-east-1",
        "key_usage": key_usage,
        "key_alias": alias,
        "key_description": f"created over HTTP by {alias}",
        **overrides,
    }


def key_count(target) -> int:
    return len(client(target, "kms").list_keys()["Keys"])


def assert_gateway_error(answer: Answer, status: int, error_type: str, message: str) -> None:
    assert (answer.status, answer.json) == (status, {"message": message}), answer
    assert answer.headers["x-amzn-errortype"] == error_type


def wait_until_full(rate: float, burst: int) -> None:
    """An idle token bucket refills to `burst` within burst/rate seconds."""
    time.sleep(burst / rate + 0.2)


def admitted_before_refusal(url: str, key: str, limit: int = 500) -> tuple[int, float, Answer]:
    """Spend-only requests until the first 429: (how many passed, seconds taken, the 429)."""
    started = time.monotonic()
    for passed in range(limit):
        answer = send(url, INVALID, headers={"x-api-key": key})
        if answer.status == 429:
            return passed, time.monotonic() - started, answer
        assert answer.status == 400, answer
    pytest.fail(f"no 429 within {limit} requests")


# --- 201: keys created, read back from KMS ---------------------------------------------------------------------


@pytest.mark.parametrize("key_usage", ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"])
def test_creates_a_key_and_alias_for_each_key_usage(target, url, service_key, key_usage):
    alias = f"http/{key_usage.lower()}"
    answer = send(url, request_body(alias, key_usage), headers={"x-api-key": service_key})
    assert answer.status == 201, answer
    created = answer.json
    assert created["AliasName"] == f"alias/{alias}"
    kms = client(target, "kms")
    described = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert (described["Arn"], described["KeyUsage"], described["KeyState"]) == (created["KeyArn"], key_usage, "Enabled")
    aliases = kms.list_aliases(KeyId=created["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in aliases] == [f"alias/{alias}"]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=created["KeyId"])["Tags"]}
    assert tags["CreatedBy"] == "kms-key-generator"


# --- 400, 403, 409: refused before or by the handler, nothing created ------------------------------------------


def test_validator_refuses_a_body_the_model_rejects_before_the_lambda_runs(target, url, service_key):
    before = key_count(target)
    for body in (INVALID, request_body("http/extra", colour="blue"), "not json"):
        answer = send(url, body, headers={"x-api-key": service_key})
        assert_gateway_error(answer, 400, "BadRequestException", "Invalid request body")
    assert key_count(target) == before


def test_handler_refuses_what_the_model_lets_through(target, url, service_key):
    before = key_count(target)
    answer = send(url, request_body("http/bad-region", region="xx-nowhere-1"), headers={"x-api-key": service_key})
    assert answer.status == 400, answer
    assert answer.json["message"].startswith("BadRequest: Region: ")
    assert key_count(target) == before


def test_refuses_an_account_outside_the_allow_list(target, url, service_key):
    before = key_count(target)
    answer = send(url, request_body("http/other-account", account="999999999999"), headers={"x-api-key": service_key})
    assert (answer.status, answer.json) == (403, {"message": "Forbidden: Account: 999999999999 is not allowed"})
    assert key_count(target) == before


def test_a_taken_alias_is_a_conflict_and_creates_nothing(target, url, service_key):
    first = send(url, request_body("http/taken"), headers={"x-api-key": service_key})
    assert first.status == 201, first
    before = key_count(target)
    again = send(url, request_body("http/taken"), headers={"x-api-key": service_key})
    assert again.status == 409, again
    assert again.json["message"].startswith("Conflict: alias alias/http/taken already exists")
    assert key_count(target) == before


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "no-such-key-0123456789abcdefghij"}, {"X-API-KEY": ""}],
    ids=["missing", "unknown", "empty"],
)
def test_refuses_a_request_without_a_valid_api_key(url, headers):
    assert_gateway_error(send(url, request_body("http/nokey"), headers=headers), 403, "ForbiddenException", "Forbidden")


def test_refuses_a_disabled_tenant_key(url, tenant_keys):
    answer = send(url, request_body("http/disabled"), headers={"x-api-key": tenant_keys["delta"]})
    assert_gateway_error(answer, 403, "ForbiddenException", "Forbidden")


def test_refuses_a_key_in_no_usage_plan_of_the_stage(target, url):
    stray = client(target, "apigateway").create_api_key(name="stray", enabled=True)
    answer = send(url, request_body("http/stray"), headers={"x-api-key": stray["value"]})
    assert_gateway_error(answer, 403, "ForbiddenException", "Forbidden")


@pytest.mark.parametrize("method, path", [("GET", "/keys"), ("POST", "/nothing"), ("POST", "/keys/extra")])
def test_an_unknown_route_is_missing_authentication_token(target, outputs, service_key, method, path):
    url = user_request_url(target.endpoint, outputs["rest_api_id"], outputs["stage_name"], path)
    answer = send(url, request_body("http/route"), method=method, headers={"x-api-key": service_key})
    assert_gateway_error(answer, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def test_resource_policy_refuses_a_source_outside_the_allowed_cidrs(target, outputs, url, service_key):
    before = key_count(target)
    answer = send(url, request_body("http/elsewhere"), headers={"x-api-key": service_key}, source_ip="127.0.0.2")
    arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{outputs['rest_api_id']}/{outputs['stage_name']}/POST/keys"
    message = (
        f"User: anonymous is not authorized to perform: execute-api:Invoke on resource: {arn} with an explicit deny"
    )
    assert_gateway_error(answer, 403, "AccessDeniedException", message)
    assert key_count(target) == before


# --- tenants: no reach into each other's accounts, aliases or keys ---------------------------------------------


def test_a_tenant_cannot_create_keys_in_another_tenants_account(target, url, tenant_keys):
    before = key_count(target)
    body = request_body("beta/in-alphas-account", account=ALPHA_ACCOUNT)
    answer = send(url, body, headers={"x-api-key": tenant_keys["beta"]})
    assert (answer.status, answer.json) == (403, {"message": f"Forbidden: Account: {ALPHA_ACCOUNT} is not allowed"})
    assert key_count(target) == before


def test_a_tenant_cannot_use_another_tenants_alias_prefix(target, url, tenant_keys):
    before = key_count(target)
    answer = send(url, request_body("alpha/mine-now"), headers={"x-api-key": tenant_keys["beta"]})
    assert answer.status == 403, answer
    assert answer.json["message"].startswith("Forbidden: KeyAlias: alias/alpha/mine-now is outside")
    assert key_count(target) == before


def test_a_tenants_key_carries_its_tenant(target, url, tenant_keys):
    answer = send(url, request_body("beta/own"), headers={"x-api-key": tenant_keys["beta"]})
    assert answer.status == 201, answer
    tags = client(target, "kms").list_resource_tags(KeyId=answer.json["KeyId"])["Tags"]
    assert {t["TagKey"]: t["TagValue"] for t in tags}["Tenant"] == "beta"


def test_a_conflict_says_the_alias_is_taken_and_nothing_more(target, url, service_key, tenant_keys):
    taken = send(url, request_body("beta/taken-by-operator"), headers={"x-api-key": service_key})
    assert taken.status == 201, taken
    before = key_count(target)
    answer = send(url, request_body("beta/taken-by-operator"), headers={"x-api-key": tenant_keys["beta"]})
    assert (answer.status, answer.json) == (
        409,
        {"message": "Conflict: alias alias/beta/taken-by-operator already exists"},
    )
    assert taken.json["KeyId"] not in answer.text
    assert key_count(target) == before


# --- 429: throttles and quotas, each key held to its own plan ---------------------------------------------------


def test_stage_throttle_admits_the_burst_then_refuses(url, service_key):
    wait_until_full(STAGE_RATE, STAGE_BURST)
    passed, seconds, refusal = admitted_before_refusal(url, service_key)
    assert STAGE_BURST <= passed <= STAGE_BURST + STAGE_RATE * seconds + 1
    assert_gateway_error(refusal, 429, "TooManyRequestsException", "Too Many Requests")


def test_each_tenant_is_held_to_its_own_plan(url, tenant_keys):
    wait_until_full(STAGE_RATE, STAGE_BURST)  # the narrow plan's bucket has been idle longer still
    passed, seconds, refusal = admitted_before_refusal(url, tenant_keys["alpha"])
    assert NARROW_BURST <= passed <= NARROW_BURST + NARROW_RATE * seconds + 1
    assert_gateway_error(refusal, 429, "TooManyRequestsException", "Too Many Requests")
    # beta's plan is not alpha's: the stage still holds at least burst - alpha's share, refilled meanwhile.
    statuses = [send(url, INVALID, headers={"x-api-key": tenant_keys["beta"]}).status for _ in range(6)]
    assert statuses == [400] * 6


def test_quota_refuses_exactly_the_request_after_it_and_get_usage_reports_it(target, outputs, url, tenant_keys):
    wait_until_full(STAGE_RATE, STAGE_BURST)
    statuses = [send(url, INVALID, headers={"x-api-key": tenant_keys["gamma"]}).status for _ in range(TINY_QUOTA)]
    assert statuses == [400] * TINY_QUOTA
    for _ in range(2):
        refusal = send(url, INVALID, headers={"x-api-key": tenant_keys["gamma"]})
        assert_gateway_error(refusal, 429, "LimitExceededException", "Limit Exceeded")
    # Another tenant's quota is its own.
    assert send(url, INVALID, headers={"x-api-key": tenant_keys["beta"]}).status == 400

    today = time.strftime("%Y-%m-%d", time.gmtime())
    key_id = outputs["tenant_api_key_ids"]["gamma"]
    usage = client(target, "apigateway").get_usage(
        usagePlanId=outputs["usage_plan_ids"]["tiny"], keyId=key_id, startDate=today, endDate=today
    )
    assert usage["items"] == {key_id: [[TINY_QUOTA, 0]]}


# --- 500: the generic body, whatever failed ---------------------------------------------------------------------


def test_a_failing_function_answers_the_generic_500_without_its_text(target, outputs, url, service_key):
    lambdas = client(target, "lambda")
    name = outputs["lambda_function_name"]
    variables = lambdas.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    broken = {k: v for k, v in variables.items() if k != "SERVICE_NAME"}
    lambdas.update_function_configuration(FunctionName=name, Environment={"Variables": broken})
    try:
        answer = send(url, request_body("http/broken"), headers={"x-api-key": service_key})
    finally:
        lambdas.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    assert (answer.status, answer.json) == (500, {"message": "Internal server error"})


def test_without_the_invoke_permission_the_integration_fails_as_aws_does(target, outputs, url, service_key):
    lambdas = client(target, "lambda")
    name = outputs["lambda_function_name"]
    statements = json.loads(lambdas.get_policy(FunctionName=name)["Policy"])["Statement"]
    (statement,) = [s for s in statements if s["Sid"] == "AllowInvokeFromApiGateway"]
    lambdas.remove_permission(FunctionName=name, StatementId=statement["Sid"])
    try:
        before = key_count(target)
        answer = send(url, request_body("http/no-permission"), headers={"x-api-key": service_key})
        assert (answer.status, answer.json) == (500, {"message": "Internal server error"})
        assert key_count(target) == before
    finally:
        lambdas.add_permission(
            FunctionName=name,
            StatementId=statement["Sid"],
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=statement["Condition"]["ArnLike"]["AWS:SourceArn"],
        )
    assert send(url, request_body("http/permission-back"), headers={"x-api-key": service_key}).status == 201


# --- access logs ---------------------------------------------------------------------------------------------------


def test_every_request_leaves_an_access_log_line_in_the_stage_format(target, outputs, url, tenant_keys):
    answer = send(url, INVALID, headers={"x-api-key": tenant_keys["beta"]})
    stage = client(target, "apigateway").get_stage(restApiId=outputs["rest_api_id"], stageName=outputs["stage_name"])
    group = stage["accessLogSettings"]["destinationArn"].split(":")[6]
    events = client(target, "logs").filter_log_events(logGroupName=group)["events"]
    lines = {line["requestId"]: line for line in (json.loads(e["message"]) for e in events)}
    line = lines[answer.headers["x-amzn-requestid"]]
    assert line["status"] == "400"
    assert line["apiKeyId"] == outputs["tenant_api_key_ids"]["beta"]
    assert (line["httpMethod"], line["resourcePath"], line["sourceIp"]) == ("POST", "/keys", "127.0.0.1")
    assert line["tenant"] == "-"  # header mode: no authorizer context
    assert not any(tenant_keys["beta"] in e["message"] for e in events)


# --- the command-line clients: `tools.request_key --local` and the curl line `make deploy-local` prints -------------


def run_request_key(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """`python -m tools.request_key` as a user runs it, with a profile that does not exist (never needed locally)."""
    env = {**os.environ, "AWS_PROFILE": "no-such-profile", **environment}
    return subprocess.run(
        [sys.executable, "-m", "tools.request_key", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def local_flags(target, *, account: str = ACCOUNT, region: str = "us-east-1", alias: str) -> list[str]:
    port = str(urllib.parse.urlsplit(target.endpoint).port)
    stack_dir = str(target.workdir / "stacks" / SERVICE_STACK)
    return [
        "--local",
        "--port",
        port,
        "--stack-dir",
        stack_dir,
        "--account",
        account,
        "--region",
        region,
        "--alias",
        alias,
    ]


def test_request_key_local_creates_a_key_then_says_in_one_line_why_not(target, service_key):
    wait_until_full(STAGE_RATE, STAGE_BURST)
    created = run_request_key(*local_flags(target, alias="cli/ok"))
    assert created.returncode == 0, created.stderr
    assert service_key not in created.stdout + created.stderr
    answer = json.loads(created.stdout)
    described = client(target, "kms").describe_key(KeyId="alias/cli/ok")["KeyMetadata"]
    assert (answer["AliasName"], answer["KeyId"]) == ("alias/cli/ok", described["KeyId"])
    assert described["KeyState"] == "Enabled"

    before = key_count(target)
    port = str(urllib.parse.urlsplit(target.endpoint).port)
    failures = [
        (local_flags(target, region="xx-nowhere-1", alias="cli/bad-region"), {}, "error: bad request: Region: "),
        # KMSKG_LOCAL=1 and $LOCAL_AWS_PORT instead of --local --port.
        (
            local_flags(target, account="999999999999", alias="cli/other-account")[3:],
            {"KMSKG_LOCAL": "1", "LOCAL_AWS_PORT": port},
            "error: forbidden (wrong API key or account not allowed): Account: 999999999999 is not allowed",
        ),
        (local_flags(target, alias="cli/ok"), {}, "error: conflict: alias alias/cli/ok already exists"),
    ]
    for flags, environment, prefix in failures:
        refused = run_request_key(*flags, **environment)
        assert (refused.returncode, refused.stdout) == (1, ""), refused
        assert refused.stderr.startswith(prefix) and refused.stderr.count("\n") == 1, refused.stderr
        assert service_key not in refused.stderr
    assert key_count(target) == before


def printed_commands(target, capsys) -> tuple[str, str, str]:
    """What `make deploy-local` prints after applying: (all of it, the curl line, the request_key line)."""
    _print_outputs(target, synthesized_stacks(target.synth_dir))
    out = capsys.readouterr().out
    (curl,) = [line.strip() for line in out.splitlines() if line.startswith("  curl ")]
    (request,) = [line.strip() for line in out.splitlines() if " -m tools.request_key --local " in line]
    return out, curl, request


def test_the_printed_curl_and_request_key_lines_create_keys_as_printed(target, service_key, capsys):
    if shutil.which("curl") is None:
        pytest.fail("curl is not on PATH: the command `make deploy-local` prints needs it; install curl")
    out, curl, request = printed_commands(target, capsys)
    assert service_key not in out
    (alias,) = re.findall(r'"key_alias": "(demo-[0-9a-f]{8})"', curl)

    ran = subprocess.run(["bash", "-c", curl], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert (ran.returncode, ran.stderr) == (0, ""), ran
    body, _, status = ran.stdout.rstrip("\n").rpartition("\n")
    assert status == "HTTP 201", ran.stdout
    created = json.loads(body)
    assert created["AliasName"] == f"alias/{alias}" and created["KeyId"]
    assert client(target, "kms").describe_key(KeyId=f"alias/{alias}")["KeyMetadata"]["KeyId"] == created["KeyId"]

    ran = subprocess.run(["bash", "-c", request], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran
    assert json.loads(ran.stdout)["AliasName"].startswith("alias/demo-")
    assert service_key not in ran.stdout + ran.stderr

    # Printed again: fresh aliases, so pasting the new lines creates new keys instead of meeting a 409.
    _, curl_again, request_again = printed_commands(target, capsys)
    aliases = [re.search(r"demo-[0-9a-f]{8}", line).group(0) for line in (curl, request, curl_again, request_again)]
    assert len(set(aliases)) == 4


# --- retry safety: throttling a client can see, replays that return the same key ----------------------------------


@pytest.fixture
def faults(target):
    """Set the emulator's fault injection (test-only admin route) for one test; cleared afterwards."""
    admin = f"{target.endpoint}/_local_aws/faults"

    def configure(config: dict) -> None:
        answer = send(admin, config, method="PUT")
        assert answer.status == 200, answer

    yield configure
    send(admin, method="DELETE")


def fault_counters(target) -> dict:
    return send(f"{target.endpoint}/_local_aws/faults", method="GET").json["counters"]


def retrying_client(url: str, api_key: str, body: dict) -> tuple[Response, list[Answer]]:
    """One logical request as `tools.request_key` sends it: one client token, retried by its policy."""
    answers: list[Answer] = []

    def attempt() -> Response:
        try:
            answer = send(url, body, headers={"x-api-key": api_key})
        except OSError as error:
            raise Unreachable(str(error)) from None
        answers.append(answer)
        retry_after = answer.headers.get("retry-after")
        return Response(answer.status, answer.text, float(retry_after) if retry_after else None)

    response, _ = send_with_retries(attempt, max_attempts=12)
    return response, answers


def keys_with_token(target, token: str) -> list[str]:
    kms = client(target, "kms")
    return [
        key["KeyId"]
        for key in kms.list_keys()["Keys"]
        if {"TagKey": "ClientToken", "TagValue": token} in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
    ]


def test_throttled_key_creation_is_429_with_retry_after_and_retries_bring_every_request_through(
    target, url, service_key, faults
):
    """CreateKey at 5/s, and its next 3 calls throttled outright (so 429s happen however fast this machine is):
    several clients' retries end in 201 for every logical request, one key each, every key with its alias."""
    wait_until_full(STAGE_RATE, STAGE_BURST)
    faults(
        {
            "throttle": {"kms:CreateKey": 5},
            "fail": [{"action": "kms:CreateKey", "code": "ThrottlingException", "times": 3}],
        }
    )
    bodies = [
        request_body(f"retry/c{client_id}-r{n}", client_token=f"burst-{client_id}-{n}")
        for client_id in range(6)
        for n in range(2)
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda body: retrying_client(url, service_key, body), bodies))

    answers = [answer for _, attempts in results for answer in attempts]
    assert [response.status for response, _ in results] == [201] * len(bodies)
    assert not [answer for answer in answers if answer.status >= 500], "a throttle or a quota must never be a 5xx"
    kms_throttles = [a for a in answers if a.status == 429 and a.json["message"].startswith("TooManyRequests: ")]
    assert len(kms_throttles) >= 3
    assert {a.headers.get("retry-after") for a in kms_throttles} == {"1"}
    counters = fault_counters(target)["kms:CreateKey"]
    assert counters["throttled"] + counters["failed"] == len(kms_throttles)
    kms = client(target, "kms")
    for body in bodies:  # keys created == distinct tokens that succeeded; each has its alias
        (key_id,) = keys_with_token(target, body["client_token"])
        assert kms.describe_key(KeyId=f"alias/{body['key_alias']}")["KeyMetadata"]["KeyId"] == key_id
    assert counters["passed"] == len(bodies)


def test_a_replay_after_a_dropped_response_returns_the_first_key(target, url, service_key):
    body = request_body("retry/dropped", client_token="dropped-response-1")
    wait_until_full(STAGE_RATE, STAGE_BURST)
    with pytest.raises(TimeoutError):  # the client hangs up before the answer; the request goes on
        send(url, body, headers={"x-api-key": service_key}, timeout=0.05)
    kms = client(target, "kms")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            first = kms.describe_key(KeyId="alias/retry/dropped")["KeyMetadata"]["KeyId"]
            break
        except kms.exceptions.NotFoundException:
            time.sleep(0.2)
    else:
        pytest.fail("the dropped request never created its key")

    replay = send(url, body, headers={"x-api-key": service_key})

    assert replay.status == 201, replay
    assert (replay.json["KeyId"], replay.json["Replayed"]) == (first, True)
    assert keys_with_token(target, "dropped-response-1") == [first]
    other = send(url, {**body, "key_description": "changed"}, headers={"x-api-key": service_key})
    assert (other.status, other.json) == (
        409,
        {"message": "Conflict: client_token was already used with different parameters"},
    )


def test_a_kms_quota_is_503_naming_it_and_creates_nothing(target, url, service_key, faults):
    faults({"fail": [{"action": "kms:CreateKey", "code": "LimitExceededException"}]})
    before = key_count(target)
    wait_until_full(STAGE_RATE, STAGE_BURST)

    answer = send(url, request_body("retry/quota"), headers={"x-api-key": service_key})

    assert answer.status == 503, answer
    assert answer.json == {
        "message": f"ServiceUnavailable: the KMS keys quota of KMS is reached in account {ACCOUNT}, Region "
        "us-east-1; an operator must raise it (Service Quotas) or delete unused keys"
    }
    assert "retry-after" not in answer.headers
    assert key_count(target) == before


def test_request_key_retries_a_throttle_and_reports_its_attempts(target, faults):
    faults({"fail": [{"action": "kms:CreateKey", "code": "ThrottlingException", "times": 2}]})
    wait_until_full(STAGE_RATE, STAGE_BURST)

    ran = run_request_key(*local_flags(target, alias="retry/cli"))

    assert ran.returncode == 0, ran.stderr
    assert "created after 3 attempts (2 throttled)" in ran.stderr
    created = json.loads(ran.stdout)
    kms = client(target, "kms")
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=created["KeyId"])["Tags"]}
    assert keys_with_token(target, tags["ClientToken"]) == [created["KeyId"]]  # 3 attempts, 1 key
