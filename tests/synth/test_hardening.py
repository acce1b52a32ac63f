"""Production hardening, read off the synthesized JSON: logging, tracing, Lambda limits, alarms, dashboard,
WAF, custom domain and the operations key. `service` is the default config, `hardened` turns every feature
on (tests/fixtures/hardened.toml) and `variant` turns the optional ones off."""

from __future__ import annotations

import json
import re

import pytest

from constructs_lib import api_contract
from constructs_lib.monitoring import LOG_METRICS
from constructs_lib.settings import LambdaSettings
from constructs_lib.waf import MANAGED_RULE_GROUPS, REDACTED_HEADERS
from tests.support.synth import PROJECT_ROOT, only, ref, resources

HANDLER = PROJECT_ROOT / "lambda" / "kms_key_generator" / "handler.py"


def _address(reference: str) -> str:
    """`${type.name.attr}` -> `type.name` (the form `depends_on` uses)."""
    return reference[2:-1].rsplit(".", 1)[0]


# --- execution logging, metrics, throttling, tracing ---------------------------------------------------------


def test_method_settings_log_errors_keep_data_tracing_off_and_throttle_the_stage(service):
    method_settings = only(service, "aws_api_gateway_method_settings")
    assert method_settings["method_path"] == "*/*"
    assert method_settings["stage_name"] == ref(service, "aws_api_gateway_stage", "stage_name")
    assert method_settings["settings"] == {
        "logging_level": "ERROR",
        "metrics_enabled": True,
        "data_trace_enabled": False,
        "caching_enabled": False,
        "throttling_rate_limit": 5,
        "throttling_burst_limit": 10,
    }
    # Execution logs need the account's CloudWatch role and their own group first.
    assert method_settings["depends_on"] == [
        _address(ref(service, "aws_api_gateway_account", "id")),
        _address(ref(service, "aws_cloudwatch_log_group", "id", "api_execution-logs")),
    ]


def test_execution_logs_go_to_a_group_terraform_creates_first(service, variant):
    group = only(service, "aws_cloudwatch_log_group", "api_execution-logs")
    rest_api_id = ref(service, "aws_api_gateway_rest_api", "id")
    assert group["name"] == f"API-Gateway-Execution-Logs_{rest_api_id}/v1"
    assert group["kms_key_id"] == ref(service, "aws_kms_key", "arn", "operations-key")
    assert group["retention_in_days"] == 0
    assert ref(service, "aws_cloudwatch_log_group", "name", "api_execution-logs")[2:-1] in json.dumps(
        service["output"]["log_group_names"]
    )
    assert only(variant.service, "aws_cloudwatch_log_group", "api_execution-logs")["name"].endswith("/live")


def test_account_setting_waits_for_its_role_policy(service):
    """Else a stage could start logging before the role may write, and lose its logs."""
    account = only(service, "aws_api_gateway_account")
    assert account["depends_on"] == [_address(ref(service, "aws_iam_role_policy", "id", "access-logs"))]


def test_method_settings_follow_settings(hardened, variant):
    assert only(hardened.service, "aws_api_gateway_method_settings")["settings"] == {
        "logging_level": "INFO",
        "metrics_enabled": True,
        "data_trace_enabled": False,
        "caching_enabled": False,
        "throttling_rate_limit": 50,
        "throttling_burst_limit": 80,
    }
    assert only(variant.service, "aws_api_gateway_method_settings")["settings"]["metrics_enabled"] is False


def test_stage_and_every_function_are_traced(service, variant):
    assert only(service, "aws_api_gateway_stage")["xray_tracing_enabled"] is True
    functions = resources(service, "aws_lambda_function")
    assert len(functions) == 2
    assert all(f["tracing_config"] == {"mode": "Active"} for f in functions.values())
    assert "xray_tracing_enabled" not in only(variant.service, "aws_api_gateway_stage")
    assert not any("tracing_config" in f for f in resources(variant.service, "aws_lambda_function").values())


# --- Lambda hardening -------------------------------------------------------------------------------------


def test_functions_have_reserved_concurrency_and_encrypted_environment_but_no_dead_letter_queue(service):
    key = ref(service, "aws_kms_key", "arn", "operations-key")
    reserved = {}
    for name, function in resources(service, "aws_lambda_function").items():
        reserved[function["function_name"]] = function["reserved_concurrent_executions"]
        assert function["kms_key_arn"] == key, name
        # Every caller invokes synchronously and sees the error: a dead-letter queue would stay empty.
        assert "dead_letter_config" not in function, name
    assert reserved == {"kms-key-generator": 10, "kms-key-generator-api-key-rotation": 2}
    assert resources(service, "aws_sqs_queue") == {}


def test_reserved_concurrency_follows_settings(hardened, variant):
    reserved = {
        f["function_name"]: f["reserved_concurrent_executions"]
        for f in resources(hardened.service, "aws_lambda_function").values()
    }
    assert reserved == {"keys-hardened": 5, "keys-hardened-token-authorizer": 5, "keys-hardened-api-key-rotation": 2}
    assert {
        f["reserved_concurrent_executions"] for f in resources(variant.service, "aws_lambda_function").values()
    } == {-1}


@pytest.mark.parametrize(("reserved", "rotation"), [(10, 2), (1, 2), (-1, -1)])
def test_rotation_reserves_nothing_when_the_account_cannot(reserved, rotation):
    """An account with a concurrency quota of 10 can reserve nothing, for no function."""
    assert LambdaSettings(reserved_concurrency=reserved).rotation_concurrency == rotation


def test_execution_roles_may_use_what_hardening_added(service):
    key = ref(service, "aws_kms_key", "arn", "operations-key")
    policies = resources(service, "aws_iam_role_policy")
    execution = [p["policy"] for name, p in policies.items() if "execution-policy" in name]
    assert len(execution) == 2
    for document in execution:
        assert (
            f'"Sid" = "DecryptEnvironment", "Effect" = "Allow", "Action" = ["kms:Decrypt"], "Resource" = {key[2:-1]}'
            in document
        )
        assert '"Action" = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource" = "*"' in document
        assert "sqs:" not in document


# --- the operations key and encrypted, never-expiring logs --------------------------------------------------


def test_every_log_group_is_encrypted_with_the_operations_key_and_never_expires(service, hardened):
    for stack in (service, hardened.service):
        key = ref(stack, "aws_kms_key", "arn", "operations-key")
        groups = resources(stack, "aws_cloudwatch_log_group")
        assert len(groups) >= 4
        for name, group in groups.items():
            assert group["kms_key_id"] == key, name
            assert group["retention_in_days"] == 0, name


def test_operations_key_lets_only_this_accounts_logs_and_alarms_use_it(service):
    key = only(service, "aws_kms_key", "operations-key")
    assert key["enable_key_rotation"] is True
    policy = key["policy"]
    assert '"Principal" = {"Service" = "logs.us-east-1.amazonaws.com"}' in policy
    assert (
        '"kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.partition.partition}:logs:us-east-1:'
        '${data.aws_caller_identity.current.account_id}:log-group:*"' in policy
    )
    assert '"Principal" = {"Service" = "cloudwatch.amazonaws.com"}' in policy
    assert '"aws:SourceAccount" = data.aws_caller_identity.current.account_id' in policy
    assert '"AWS" = "*"' not in policy


def test_every_kms_key_has_a_policy_and_rotates(service, state):
    for stack in (service, state):
        for name, key in resources(stack, "aws_kms_key").items():
            assert '"Sid" = "AccountAdministers"' in key["policy"], name
            assert key["enable_key_rotation"] is True, name


# --- alarms and dashboard ---------------------------------------------------------------------------------


def _alarms(stack) -> dict[str, dict]:
    return {alarm["alarm_name"]: alarm for alarm in resources(stack, "aws_cloudwatch_metric_alarm").values()}


def test_alarms_cover_the_api_and_every_function(service, hardened):
    assert sorted(_alarms(service)) == [
        f"kms-key-generator-v1-{what}"
        for what in sorted(
            [
                "api-5xx-anomaly",
                "api-4xx-spike",
                "key-generator-errors",
                "key-generator-throttles",
                "rotation-errors",
                "rotation-throttles",
            ]
        )
    ]
    assert {"keys-hardened-prod-authorizer-errors", "keys-hardened-prod-authorizer-throttles"} <= set(
        _alarms(hardened.service)
    )


def test_every_alarm_notifies_the_encrypted_topic_on_alarm_and_recovery(service):
    topic = only(service, "aws_sns_topic")
    assert topic["name"] == "kms-key-generator-v1-alarms"
    assert topic["kms_master_key_id"] == ref(service, "aws_kms_key", "arn", "operations-key")
    arn = ref(service, "aws_sns_topic", "arn")
    for name, alarm in _alarms(service).items():
        assert alarm["alarm_actions"] == [arn] and alarm["ok_actions"] == [arn], name
        assert alarm["treat_missing_data"] == "notBreaching", name
    assert resources(service, "aws_sns_topic_subscription") == {}


def test_alarm_emails_subscribe_to_the_topic(hardened):
    (subscription,) = resources(hardened.service, "aws_sns_topic_subscription").values()
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == "platform-oncall@example.com"
    assert subscription["topic_arn"] == ref(hardened.service, "aws_sns_topic", "arn")


def test_5xx_alarm_uses_an_anomaly_detection_band_on_the_stage(service, hardened):
    alarm = _alarms(service)["kms-key-generator-v1-api-5xx-anomaly"]
    assert alarm["comparison_operator"] == "GreaterThanUpperThreshold"
    assert alarm["threshold_metric_id"] == "band"
    errors, band = alarm["metric_query"]
    assert errors["metric"]["metric_name"] == "5XXError" and errors["metric"]["namespace"] == "AWS/ApiGateway"
    assert errors["metric"]["dimensions"] == {
        "ApiName": ref(service, "aws_api_gateway_rest_api", "name"),
        "Stage": ref(service, "aws_api_gateway_stage", "stage_name"),
    }
    assert band["expression"] == "ANOMALY_DETECTION_BAND(errors, 2)"
    hardened_band = _alarms(hardened.service)["keys-hardened-prod-api-5xx-anomaly"]["metric_query"][1]
    assert hardened_band["expression"] == "ANOMALY_DETECTION_BAND(errors, 3)"


def test_4xx_spike_threshold_follows_settings(service, hardened):
    assert _alarms(service)["kms-key-generator-v1-api-4xx-spike"]["threshold"] == 100
    spike = _alarms(hardened.service)["keys-hardened-prod-api-4xx-spike"]
    assert spike["threshold"] == 50 and spike["metric_name"] == "4XXError"


def test_key_generator_error_alarm_ignores_rejected_requests(service):
    alarm = _alarms(service)["kms-key-generator-v1-key-generator-errors"]
    queries = {query["id"]: query for query in alarm["metric_query"]}
    assert queries["errors"]["metric"]["metric_name"] == "Errors"
    assert queries["rejected"]["metric"] == {
        "namespace": "KmsKeyGenerator/kms-key-generator",
        "metric_name": "KeyRequestsRejected",
        "period": 300,
        "stat": "Sum",
    }
    assert queries["failures"] == {
        "id": "failures",
        "expression": "errors - FILL(rejected, 0)",
        "label": "Failures",
        "return_data": True,
    }
    assert alarm["threshold"] == 0 and alarm["comparison_operator"] == "GreaterThanThreshold"


def test_log_metric_filters_count_the_outcomes_the_handler_logs(service):
    logged = set(re.findall(r'outcome="(\w+)"', HANDLER.read_text()))
    assert set(LOG_METRICS.values()) <= logged
    filters = {f["name"]: f for f in resources(service, "aws_cloudwatch_log_metric_filter").values()}
    assert sorted(filters) == sorted(LOG_METRICS)
    for metric, outcome in LOG_METRICS.items():
        assert filters[metric]["pattern"] == f'{{ $.outcome = "{outcome}" }}'
        assert filters[metric]["log_group_name"] == ref(service, "aws_cloudwatch_log_group", "name", "key-generator")
        assert filters[metric]["metric_transformation"]["namespace"] == "KmsKeyGenerator/kms-key-generator"


def test_dashboard_shows_requests_errors_latency_functions_and_keys(service):
    dashboard = only(service, "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == "kms-key-generator-v1"
    body = dashboard["dashboard_body"]
    for needed in (
        '"Count"',
        '"4XXError"',
        '"5XXError"',
        '"Latency"',
        '"p50"',
        '"p99"',
        '"Errors"',
        '"Duration"',
        '"Throttles"',
        '"KeysCreated"',
    ):
        assert needed in body, needed
    assert body.count('"title" =') == 7


def test_alarms_and_dashboard_can_be_turned_off(variant):
    assert resources(variant.service, "aws_cloudwatch_metric_alarm") == {}
    assert resources(variant.service, "aws_sns_topic") == {}
    assert len(resources(variant.service, "aws_cloudwatch_dashboard")) == 1


# --- WAF --------------------------------------------------------------------------------------------------


def test_web_acl_runs_managed_rules_then_a_rate_limit_on_the_stage(service):
    acl = only(service, "aws_wafv2_web_acl")
    assert acl["scope"] == "REGIONAL" and acl["default_action"] == {"allow": {}}
    rules = sorted(acl["rule"], key=lambda rule: rule["priority"])
    assert [rule["name"] for rule in rules] == [*MANAGED_RULE_GROUPS, "RateLimitPerIp"]
    for rule in rules:
        # Sampled requests would keep x-api-key and Authorization unredacted.
        assert rule["visibility_config"]["sampled_requests_enabled"] is False
    assert acl["visibility_config"]["sampled_requests_enabled"] is False
    for rule in rules[:-1]:
        assert rule["override_action"] == {"none": {}}
        assert rule["statement"]["managed_rule_group_statement"]["vendor_name"] == "AWS"
    assert rules[-1]["action"] == {"block": {}}
    assert rules[-1]["statement"] == {"rate_based_statement": {"limit": 1000, "aggregate_key_type": "IP"}}
    assert "AWSManagedRulesKnownBadInputsRuleSet" in MANAGED_RULE_GROUPS  # includes the Log4j rules
    association = only(service, "aws_wafv2_web_acl_association")
    assert association["resource_arn"] == ref(service, "aws_api_gateway_stage", "arn")
    assert association["web_acl_arn"] == ref(service, "aws_wafv2_web_acl", "arn")


def test_hosting_provider_ips_are_only_counted(service):
    """Automation calling the service often runs in a cloud; VPNs, proxies and Tor stay blocked."""
    acl = only(service, "aws_wafv2_web_acl")
    anonymous = next(rule for rule in acl["rule"] if rule["name"] == "AWSManagedRulesAnonymousIpList")
    assert anonymous["statement"]["managed_rule_group_statement"]["rule_action_override"] == [
        {"name": "HostingProviderIPList", "action_to_use": {"count": {}}}
    ]


def test_waf_logs_redact_credentials(service, hardened):
    logging = only(service, "aws_wafv2_web_acl_logging_configuration")
    group = only(service, "aws_cloudwatch_log_group", "waf")
    assert group["name"].startswith("aws-waf-logs-")
    assert logging["log_destination_configs"] == [ref(service, "aws_cloudwatch_log_group", "arn", "waf")]
    assert [field["single_header"]["name"] for field in logging["redacted_fields"]] == list(REDACTED_HEADERS)
    assert {"x-api-key", "authorization"} == set(REDACTED_HEADERS)
    rate = next(r for r in only(hardened.service, "aws_wafv2_web_acl")["rule"] if r["name"] == "RateLimitPerIp")
    assert rate["statement"]["rate_based_statement"]["limit"] == 500


def test_waf_can_be_turned_off(variant):
    assert resources(variant.service, "aws_wafv2_web_acl") == {}
    assert "web_acl_arn" not in variant.service["output"]


# --- custom domain ----------------------------------------------------------------------------------------


def test_no_custom_domain_by_default(service):
    for rtype in ("aws_acm_certificate", "aws_api_gateway_domain_name", "aws_route53_record"):
        assert resources(service, rtype) == {}
    assert "disable_execute_api_endpoint" not in only(service, "aws_api_gateway_rest_api")


def test_custom_domain_has_a_dns_validated_certificate_in_the_zone(hardened):
    stack = hardened.service
    certificate = only(stack, "aws_acm_certificate")
    assert certificate["domain_name"] == "keys.example.test"
    assert certificate["validation_method"] == "DNS"
    assert certificate["lifecycle"] == {"create_before_destroy": True}
    records = only(stack, "aws_route53_record", "custom-domain_validation-record")
    assert records["zone_id"] == "Z0EXAMPLETEST00000001"
    options = ref(stack, "aws_acm_certificate", "domain_validation_options")[2:-1]
    assert records["for_each"] == f"${{{{ for key, val in tolist({options}): val.domain_name => val }}}}"
    assert (records["name"], records["type"], records["records"]) == (
        "${each.value.resource_record_name}",
        "${each.value.resource_record_type}",
        ["${each.value.resource_record_value}"],
    )
    validation = only(stack, "aws_acm_certificate_validation")
    assert validation["certificate_arn"] == ref(stack, "aws_acm_certificate", "arn")
    assert "record.fqdn" in validation["validation_record_fqdns"]


def test_custom_domain_is_regional_tls_1_2_and_maps_the_stage(hardened):
    stack = hardened.service
    domain = only(stack, "aws_api_gateway_domain_name")
    assert domain["security_policy"] == "TLS_1_2"
    assert domain["endpoint_configuration"] == {"types": ["REGIONAL"]}
    assert domain["regional_certificate_arn"] == ref(stack, "aws_acm_certificate_validation", "certificate_arn")
    mapping = only(stack, "aws_api_gateway_base_path_mapping")
    assert mapping["api_id"] == ref(stack, "aws_api_gateway_rest_api", "id")
    assert mapping["stage_name"] == ref(stack, "aws_api_gateway_stage", "stage_name")
    assert mapping["base_path"] == "v1"
    alias = only(stack, "aws_route53_record", "custom-domain_alias-record")
    assert alias["type"] == "A"
    assert alias["alias"]["name"] == ref(stack, "aws_api_gateway_domain_name", "regional_domain_name")
    assert alias["alias"]["zone_id"] == ref(stack, "aws_api_gateway_domain_name", "regional_zone_id")
    assert only(stack, "aws_api_gateway_rest_api")["disable_execute_api_endpoint"] is True
    assert hardened.service["output"]["key_endpoint_url"]["value"] == "https://keys.example.test/v1/keys"


def test_switching_the_execute_api_endpoint_redeploys_the_stage(hardened):
    """AWS applies the endpoint switch only with a new deployment, so the flag is in the deployment hash."""
    trigger = only(hardened.service, "aws_api_gateway_deployment")["triggers"]["contract"]
    access = {"allowed_source_cidrs": ("0.0.0.0/0", "::/0"), "allowed_vpc_endpoint_ids": (), "authorizer_ttl": 3}
    assert trigger == api_contract.deployment_hash(**access, disable_execute_api_endpoint=True)
    assert trigger != api_contract.deployment_hash(**access, disable_execute_api_endpoint=False)


def test_custom_domain_outputs_tell_users_where_to_point_dns(hardened):
    outputs = hardened.service["output"]
    assert outputs["custom_domain_key_endpoint_url"]["value"] == "https://keys.example.test/v1/keys"
    assert outputs["custom_domain_target"]["value"] == ref(
        hardened.service, "aws_api_gateway_domain_name", "regional_domain_name"
    )
    assert outputs["custom_domain_target_zone_id"]["value"] == ref(
        hardened.service, "aws_api_gateway_domain_name", "regional_zone_id"
    )
    for name in ("custom_domain_name", "certificate_arn"):
        assert outputs[name]["description"]


@pytest.mark.parametrize("stack_name", ["service", "hardened"])
def test_rest_api_is_replaced_before_it_is_destroyed(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    stack = stack if isinstance(stack, dict) else stack.service
    assert only(stack, "aws_api_gateway_rest_api")["lifecycle"] == {"create_before_destroy": True}
