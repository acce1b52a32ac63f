"""Every production-hardening feature on (tests/fixtures/hardened.toml), applied to a private emulator.

Custom domain in a Route 53 zone (the emulator seeds `example.test`), execute-api endpoint off, WAF with
logging, INFO execution logs, X-Ray, alarms with an e-mail subscriber, dashboard, hardened functions and
the token authorizer. The deployed objects are read back with boto3; then the secrets guard looks for
every live secret (API key values, the secret string, an issued token) in the synth output, the plain
outputs, Terraform's printed output and every log group; a second plan shows no changes; destroy is clean.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest

from tests.support.emulator import client, emulator
from tests.support.http import send, user_request_url
from tools import tokens
from tools.local import LocalTarget, synthesized_stacks

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(165)]
SERVICE = "keys-hardened"
DOMAIN = "keys.example.test"
AUTHORIZER_TTL = 3  # tests/fixtures/hardened.toml


@pytest.fixture(scope="module")
def deployment(hardened, tmp_path_factory):
    """`(target, {stack name: stack}, [terraform apply runs])`."""
    workdir = tmp_path_factory.mktemp("local-hardened")
    with emulator(workdir / "emulator.log") as endpoint:
        target = LocalTarget(endpoint, hardened.outdir, workdir)
        stacks = synthesized_stacks(target.synth_dir)
        runs = [target.apply(stack) for stack in stacks]
        yield target, {stack.name: stack for stack in stacks}, runs


@pytest.fixture(scope="module")
def target(deployment):
    return deployment[0]


@pytest.fixture(scope="module")
def raw_outputs(deployment):
    target, stacks, _ = deployment
    return target.outputs(stacks[SERVICE])


@pytest.fixture(scope="module")
def outputs(raw_outputs):
    return {name: output["value"] for name, output in raw_outputs.items()}


def test_custom_domain_serves_the_stage_under_tls_1_2(target, outputs):
    apigw = client(target, "apigateway")
    domain = apigw.get_domain_name(domainName="keys.example.test")
    assert domain["securityPolicy"] == "TLS_1_2"
    assert domain["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert domain["regionalDomainName"] == outputs["custom_domain_target"]
    (mapping,) = apigw.get_base_path_mappings(domainName="keys.example.test")["items"]
    assert (mapping["basePath"], mapping["restApiId"], mapping["stage"]) == ("v1", outputs["rest_api_id"], "prod")
    assert outputs["custom_domain_key_endpoint_url"] == "https://keys.example.test/v1/keys"
    assert apigw.get_rest_api(restApiId=outputs["rest_api_id"])["disableExecuteApiEndpoint"] is True
    certificate = client(target, "acm").describe_certificate(CertificateArn=outputs["certificate_arn"])["Certificate"]
    assert certificate["Status"] == "ISSUED" and certificate["DomainName"] == "keys.example.test"


def test_zone_holds_the_validation_and_alias_records(target, outputs):
    records = client(target, "route53").list_resource_record_sets(HostedZoneId="Z0EXAMPLETEST00000001")
    by_type = {}
    for record in records["ResourceRecordSets"]:
        by_type.setdefault(record["Type"], []).append(record)
    (alias,) = [r for r in by_type["A"] if r["Name"].rstrip(".") == "keys.example.test"]
    assert alias["AliasTarget"]["DNSName"].rstrip(".") == outputs["custom_domain_target"]
    certificate = client(target, "acm").describe_certificate(CertificateArn=outputs["certificate_arn"])["Certificate"]
    (expected,) = [option["ResourceRecord"] for option in certificate["DomainValidationOptions"]]
    cnames = {(r["Name"].rstrip("."), r["ResourceRecords"][0]["Value"]) for r in by_type["CNAME"]}
    assert (expected["Name"].rstrip("."), expected["Value"]) in cnames


def test_waf_protects_the_stage_and_logs_without_credentials(target, outputs):
    waf = client(target, "wafv2")
    stage_arn = f"arn:aws:apigateway:us-east-1::/restapis/{outputs['rest_api_id']}/stages/prod"
    acl = waf.get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]
    assert acl["ARN"] == outputs["web_acl_arn"]
    assert [rule["Name"] for rule in sorted(acl["Rules"], key=lambda r: r["Priority"])][-1] == "RateLimitPerIp"
    logging = waf.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    assert logging["LogDestinationConfigs"][0].split(":log-group:")[1].startswith("aws-waf-logs-keys-hardened")
    assert {field["SingleHeader"]["Name"] for field in logging["RedactedFields"]} == {"x-api-key", "authorization"}


def test_stage_logs_at_info_traces_and_throttles(target, outputs):
    stage = client(target, "apigateway").get_stage(restApiId=outputs["rest_api_id"], stageName="prod")
    assert stage["tracingEnabled"] is True
    settings = stage["methodSettings"]["*/*"]
    assert settings["loggingLevel"] == "INFO" and settings["metricsEnabled"] is True
    assert settings["dataTraceEnabled"] is False
    assert (settings["throttlingRateLimit"], settings["throttlingBurstLimit"]) == (50, 80)


def test_functions_are_hardened(target, outputs):
    lam = client(target, "lambda")
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    assert set(functions) == {SERVICE, f"{SERVICE}-api-key-rotation", f"{SERVICE}-token-authorizer"}
    for name, function in functions.items():
        assert function["TracingConfig"]["Mode"] == "Active", name
        assert function["KMSKeyArn"] == outputs["operations_kms_key_arn"], name
    concurrency = {
        name: lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] for name in functions
    }
    assert concurrency == {SERVICE: 5, f"{SERVICE}-token-authorizer": 5, f"{SERVICE}-api-key-rotation": 2}


def test_every_log_group_is_encrypted_and_never_expires(target, outputs):
    groups = client(target, "logs").describe_log_groups()["logGroups"]
    ours = {g["logGroupName"]: g for g in groups if g["logGroupName"] in outputs["log_group_names"]}
    assert len(ours) == len(outputs["log_group_names"]) >= 5
    for name, group in ours.items():
        assert group.get("kmsKeyId") == outputs["operations_kms_key_arn"], name
        assert "retentionInDays" not in group, name


def test_alarms_notify_the_encrypted_topic_and_its_subscriber(target, outputs):
    sns = client(target, "sns")
    attributes = sns.get_topic_attributes(TopicArn=outputs["alarm_topic_arn"])["Attributes"]
    assert attributes["KmsMasterKeyId"] == outputs["operations_kms_key_arn"]
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=outputs["alarm_topic_arn"])["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "platform-oncall@example.com")
    alarms = {a["AlarmName"]: a for a in client(target, "cloudwatch").describe_alarms()["MetricAlarms"]}
    assert set(outputs["alarm_names"]) == set(alarms)
    assert f"{SERVICE}-prod-authorizer-throttles" in alarms
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [outputs["alarm_topic_arn"]] == alarm["OKActions"], name
    anomaly = alarms[f"{SERVICE}-prod-api-5xx-anomaly"]
    assert anomaly["ThresholdMetricId"] == "band"
    assert any(q.get("Expression") == "ANOMALY_DETECTION_BAND(errors, 3)" for q in anomaly["Metrics"])


def test_dashboard_and_key_metrics_exist(target, outputs):
    cloudwatch = client(target, "cloudwatch")
    body = json.loads(cloudwatch.get_dashboard(DashboardName=outputs["dashboard_name"])["DashboardBody"])
    assert len(body["widgets"]) == 7
    filters = client(target, "logs").describe_metric_filters(logGroupName=f"/aws/lambda/{SERVICE}")["metricFilters"]
    assert {f["filterName"] for f in filters} == {"KeysCreated", "KeyRequestsRejected", "KeyCreationFailures"}


@pytest.fixture(scope="module")
def domain_url(target) -> str:
    """The custom domain's `v1` base path, reached with `Host: keys.example.test` (the emulator routes by Host)."""
    return f"{target.endpoint}/v1/keys"


@pytest.fixture
def issue_token(target, outputs, monkeypatch):
    """Issue a bearer token for tenant `acme`, metered on acme's API key (the table the authorizer reads)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", target.endpoint)
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )

    def issue() -> str:
        return tokens.issue(session, outputs["tokens_table_name"], "acme", outputs["tenant_api_key_ids"]["acme"])[0]

    issue.session = session
    return issue


def key_request(alias: str) -> dict:
    return {
        "account": "123456789012",
        "region": "us-east-1",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": alias,
        "key_description": "over the custom domain",
    }


def test_the_disabled_execute_api_endpoint_refuses_requests(target, outputs, issue_token):
    url = user_request_url(target.endpoint, outputs["rest_api_id"], "prod")
    answer = send(url, key_request("acme/execute-api"), headers={"Authorization": f"Bearer {issue_token()}"})
    assert (answer.status, answer.json) == (403, {"message": "Forbidden"})


def test_an_issued_token_creates_a_key_through_the_custom_domain(target, outputs, domain_url, issue_token):
    token = issue_token()
    answer = send(domain_url, key_request("acme/token"), headers={"Host": DOMAIN, "Authorization": f"Bearer {token}"})
    assert answer.status == 201, answer
    kms = client(target, "kms")
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=answer.json["KeyId"])["Aliases"]] == ["alias/acme/token"]
    # The access log names the tenant the authorizer resolved, never the token.
    stage = client(target, "apigateway").get_stage(restApiId=outputs["rest_api_id"], stageName="prod")
    group = stage["accessLogSettings"]["destinationArn"].split(":")[6]
    events = client(target, "logs").filter_log_events(logGroupName=group)["events"]
    lines = {line["requestId"]: line for line in (json.loads(event["message"]) for event in events)}
    assert lines[answer.headers["x-amzn-requestid"]]["tenant"] == "acme"
    assert not any(token in event["message"] for event in events)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer short"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["missing", "malformed-token", "not-bearer"],
)
def test_a_missing_or_malformed_authorization_header_is_401(target, domain_url, headers):
    before = len(client(target, "kms").list_keys()["Keys"])
    answer = send(domain_url, key_request("acme/unauthorized"), headers={"Host": DOMAIN, **headers})
    assert (answer.status, answer.json) == (401, {"message": "Unauthorized"})
    assert answer.headers["x-amzn-errortype"] == "UnauthorizedException"
    assert len(client(target, "kms").list_keys()["Keys"]) == before


def test_an_api_key_header_admits_nothing_when_the_authorizer_supplies_keys(target, domain_url):
    live = client(target, "apigateway").get_api_keys(includeValues=True)["items"][0]["value"]
    answer = send(domain_url, key_request("acme/header-key"), headers={"Host": DOMAIN, "x-api-key": live})
    assert (answer.status, answer.json) == (401, {"message": "Unauthorized"})


def test_a_revoked_token_is_refused_once_its_cached_decision_expires(outputs, domain_url, issue_token):
    token = issue_token()
    headers = {"Host": DOMAIN, "Authorization": f"Bearer {token}"}
    assert send(domain_url, key_request("acme/before-revoke"), headers=headers).status == 201
    tokens.revoke(issue_token.session, outputs["tokens_table_name"], tokens.token_hash(token))
    time.sleep(AUTHORIZER_TTL + 0.5)  # the cached Allow has expired: the authorizer runs again
    answer = send(domain_url, key_request("acme/after-revoke"), headers=headers)
    assert (answer.status, answer.json) == (
        403,
        {"message": "User is not authorized to access this resource with an explicit deny"},
    )
    unknown = {**headers, "Authorization": "Bearer " + "x" * 43}
    never_issued = send(domain_url, key_request("acme/unknown"), headers=unknown)
    assert never_issued.status == 403


def test_no_secret_in_synth_output_plain_outputs_terraform_output_or_logs(
    target, deployment, raw_outputs, outputs, hardened, monkeypatch
):
    _, _, runs = deployment
    apigw = client(target, "apigateway")
    stored = client(target, "secretsmanager").get_secret_value(SecretId=outputs["api_key_secret_arn"])
    current = json.loads(stored["SecretString"])
    # Exercise the functions so their logs have something to leak: a token issued and authorized, a key made.
    monkeypatch.setenv("AWS_ENDPOINT_URL", target.endpoint)
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    token, _ = tokens.issue(session, outputs["tokens_table_name"], "acme", outputs["tenant_api_key_ids"]["acme"])
    lam = client(target, "lambda")
    lam.invoke(
        FunctionName=f"{SERVICE}-token-authorizer",
        Payload=json.dumps(
            {
                "type": "REQUEST",
                "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/keys",
                "headers": {"Authorization": f"Bearer {token}"},
            }
        ),
    )
    lam.invoke(
        FunctionName=SERVICE,
        Payload=json.dumps(
            {
                "Account": "123456789012",
                "Region": "us-east-1",
                "KeyUsage": "ENCRYPT_DECRYPT",
                "KeyAlias": "guard",
                "KeyDescription": "secrets guard",
                "Caller": {"ApiKeyId": current["id"], "TenantId": ""},
            }
        ),
    )
    secrets = {key["value"] for key in apigw.get_api_keys(includeValues=True)["items"]}
    assert current["value"] in secrets  # the secret string holds the live key's value
    secrets.add(token)
    assert len(secrets) >= 2 and all(len(secret) >= 20 for secret in secrets)

    def leaks(text: str) -> list[str]:
        return [secret[:4] + "…" for secret in secrets if secret in text]

    plain = {name: o["value"] for name, o in raw_outputs.items() if not o.get("sensitive")}
    assert leaks(json.dumps(plain)) == []
    assert leaks("".join(run.stdout + run.stderr for run in runs)) == []
    for path in hardened.outdir.rglob("*.json"):
        assert leaks(path.read_text()) == [], path
    logs = client(target, "logs")
    groups = [
        g["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate() for g in page["logGroups"]
    ]
    events = [
        event["message"]
        for group in groups
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        for event in page["events"]
    ]
    assert events, "the functions wrote no logs: the guard would check nothing"
    assert leaks("\n".join(events)) == []


def test_second_plan_shows_no_changes(deployment):
    target, stacks, _ = deployment
    for stack in stacks.values():
        result = target.plan(stack)
        assert result.returncode == 0, result.stdout + result.stderr


def test_destroy_removes_domain_waf_alarms_and_dashboard(deployment, outputs):
    target, stacks, _ = deployment
    target.destroy(stacks[SERVICE])
    assert client(target, "apigateway").get_domain_names()["items"] == []
    assert client(target, "wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    assert client(target, "cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert client(target, "cloudwatch").list_dashboards()["DashboardEntries"] == []
    assert client(target, "sns").list_topics()["Topics"] == []
    assert client(target, "lambda").list_functions()["Functions"] == []
    target.empty_state_bucket(stacks[SERVICE])
    target.destroy(stacks[f"{SERVICE}-remote-state"])
