"""Fault injection (test-only): throttled and failing AWS API actions, set by the admin route or LOCAL_AWS_FAULTS.

Clients are real boto3 clients with a single attempt (botocore's standard retry would retry a throttle); the wire
format is checked on raw HTTP answers, as botocore parses them leniently.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws import FAULTS_ENV, FAULTS_PATH, LocalAws
from local_aws.__main__ import main
from local_aws.faults import FaultConfigError, Faults, parse
from local_aws.private import free_port, private_emulator
from tests.support.emulator import client
from tests.support.http import Answer, send
from tools.local import emulator_client

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def signed_by(service: str) -> str:
    """An Authorization header with `service` in its credential scope (moto does not check signatures)."""
    scope = f"AKIDEXAMPLE/20250101/us-east-1/{service}/aws4_request"
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"


@pytest.fixture
def faults(emulator):
    """PUT a configuration to the emulator's admin route; whatever a test set is cleared after it."""

    def put(config: object) -> Answer:
        return send(emulator.endpoint + FAULTS_PATH, config, method="PUT")

    yield put
    assert send(emulator.endpoint + FAULTS_PATH, method="DELETE").status == 200


def state(endpoint: str) -> dict:
    answer = send(endpoint + FAULTS_PATH, method="GET")
    assert answer.status == 200, answer
    return answer.json


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_a_throttled_action_raises_the_services_throttling_error_and_other_actions_pass(emulator, faults):
    assert faults({"throttle": {"kms:CreateKey": 0.01}}).status == 200  # a burst of 1, then one call per 100 s
    kms = client(emulator, "kms", config=ONE_ATTEMPT)
    kms.create_key()
    with pytest.raises(ClientError) as raised:
        kms.create_key()
    assert error_of(raised) == (400, "ThrottlingException", "Rate exceeded")
    assert raised.value.response["ResponseMetadata"]["RequestId"]
    kms.list_keys()
    assert state(emulator.endpoint) == {
        "throttle": {"kms:CreateKey": 0.01},
        "fail": [],
        "counters": {"kms:CreateKey": {"passed": 1, "throttled": 1, "failed": 0}},
    }


def test_throttling_answers_as_kms_does_on_the_wire(emulator, faults):
    faults({"throttle": {"kms:CreateKey": 0}})  # 0: every call
    headers = {
        "X-Amz-Target": "TrentService.CreateKey",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": signed_by("kms"),
    }
    answer = send(emulator.endpoint + "/", {}, headers=headers)
    assert (answer.status, answer.headers["content-type"]) == (400, "application/x-amz-json-1.1")
    assert answer.json == {"__type": "ThrottlingException", "message": "Rate exceeded"}
    assert answer.headers["x-amzn-requestid"]


def test_the_rate_is_a_token_bucket_with_a_burst_of_one_second():
    now = [100.0]
    layer = Faults(parse({"throttle": {"kms:CreateKey": 2}}), clock=lambda: now[0])

    def admitted() -> bool:
        environ = {"HTTP_AUTHORIZATION": signed_by("kms"), "HTTP_X_AMZ_TARGET": "TrentService.CreateKey"}
        return layer.intercept(environ) is None

    assert [admitted() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert [admitted() for _ in range(2)] == [True, False]
    now[0] += 60  # the bucket holds one second's worth, never more
    assert [admitted() for _ in range(3)] == [True, True, False]
    assert layer.state()["counters"] == {"kms:CreateKey": {"passed": 5, "throttled": 3, "failed": 0}}


def test_a_failure_fails_the_next_call_once_then_the_action_serves_again(emulator, faults):
    kms = client(emulator, "kms", config=ONE_ATTEMPT)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    faults({"fail": [{"action": "kms:CreateAlias", "code": "LimitExceededException", "times": 1}]})
    with pytest.raises(ClientError) as raised:
        kms.create_alias(AliasName="alias/faults-once", TargetKeyId=key_id)
    assert error_of(raised) == (400, "LimitExceededException", "LimitExceededException injected by local_aws")
    assert not any(a["AliasName"] == "alias/faults-once" for a in kms.list_aliases(KeyId=key_id)["Aliases"])
    kms.create_alias(AliasName="alias/faults-once", TargetKeyId=key_id)
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key_id)["Aliases"]] == ["alias/faults-once"]
    current = state(emulator.endpoint)
    assert current["fail"] == [
        {
            "action": "kms:CreateAlias",
            "code": "LimitExceededException",
            "times": 1,
            "status": 400,
            "message": "LimitExceededException injected by local_aws",
            "remaining": 0,
        }
    ]
    assert current["counters"] == {"kms:CreateAlias": {"passed": 1, "throttled": 0, "failed": 1}}


def test_internal_error_codes_answer_500_and_entries_for_one_action_are_used_in_order(emulator, faults):
    kms = client(emulator, "kms", config=ONE_ATTEMPT)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    faults(
        {
            "fail": [
                {"action": "kms:DescribeKey", "code": "KMSInternalException", "times": 2},
                {"action": "kms:DescribeKey", "code": "DependencyTimeoutException", "status": 503, "message": "slow"},
            ]
        }
    )
    answers = []
    for _ in range(3):
        with pytest.raises(ClientError) as raised:
            kms.describe_key(KeyId=key_id)
        answers.append(error_of(raised)[:2])
    assert answers == [(500, "KMSInternalException")] * 2 + [(503, "DependencyTimeoutException")]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id


def test_a_query_protocol_action_is_throttled_with_an_xml_error(emulator, faults):
    faults({"throttle": {"sts:GetCallerIdentity": 0}})
    with pytest.raises(ClientError) as raised:
        client(emulator, "sts", config=ONE_ATTEMPT).get_caller_identity()
    assert error_of(raised) == (400, "Throttling", "Rate exceeded")
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": signed_by("sts")}
    answer = send(emulator.endpoint + "/", "Action=GetCallerIdentity&Version=2011-06-15", headers=headers)
    assert (answer.status, answer.headers["content-type"]) == (400, "text/xml")
    namespace = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/"}
    document = ElementTree.fromstring(answer.text)
    assert document.tag == "{https://sts.amazonaws.com/doc/2011-06-15/}ErrorResponse"
    error = [document.findtext(f"sts:Error/sts:{name}", namespaces=namespace) for name in ("Type", "Code", "Message")]
    assert error == ["Sender", "Throttling", "Rate exceeded"]
    assert document.findtext("sts:RequestId", namespaces=namespace) == answer.headers["x-amzn-requestid"]


def test_a_query_call_that_passes_reaches_moto_with_its_body(emulator, faults):
    faults({"throttle": {"sts:AssumeRole": 100}})  # read from the form body, which moto must still get
    sts = client(emulator, "sts", config=ONE_ATTEMPT)
    assumed = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/faults", RoleSessionName="body-kept")
    assert assumed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/faults/body-kept")
    assert state(emulator.endpoint)["counters"] == {"sts:AssumeRole": {"passed": 1, "throttled": 0, "failed": 0}}


@pytest.mark.parametrize(
    "config, message",
    [
        ("{", "not JSON"),
        ({"throttle": {"kms:Createkey": 1}}, "throttle['kms:Createkey']: kms has no operation 'Createkey'"),
        ({"throttle": {"apigateway:GetTags": 1}}, "apigateway speaks rest-json; faults need a json or query service"),
        ({"throttle": {"kms:CreateKey": -1}}, "the rate must be a number of calls per second >= 0"),
        ({"fail": [{"action": "kms:CreateKey", "code": "X", "time": 2}]}, "fail[0]: unknown keys ['time']"),
        ({"fail": [{"action": "kms:CreateKey"}]}, "fail[0]: code must be an AWS error code"),
        ({"retry": {}}, "unknown keys ['retry']"),
    ],
)
def test_a_bad_configuration_is_refused_and_the_current_one_stays(emulator, faults, config, message):
    faults({"throttle": {"kms:CreateKey": 5}})
    answer = faults(config)
    assert answer.status == 400 and message in answer.json["message"], answer
    assert state(emulator.endpoint)["throttle"] == {"kms:CreateKey": 5.0}


def test_delete_clears_faults_and_other_methods_are_not_allowed(emulator, faults):
    faults({"throttle": {"kms:CreateKey": 0}})
    refused = send(emulator.endpoint + FAULTS_PATH, {}, method="POST")
    assert (refused.status, refused.headers["allow"]) == (405, "GET, PUT, DELETE")
    cleared = send(emulator.endpoint + FAULTS_PATH, method="DELETE")
    assert (cleared.status, cleared.json) == (200, {"throttle": {}, "fail": [], "counters": {}})
    client(emulator, "kms", config=ONE_ATTEMPT).create_key()


def test_the_environment_variable_configures_python_m_local_aws(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"throttle": {"kms:CreateKey": 0}}))
    with private_emulator(tmp_path / "emulator.log") as endpoint:  # `python -m local_aws serve`, inheriting it
        with pytest.raises(ClientError) as raised:
            emulator_client(endpoint, "kms", config=ONE_ATTEMPT).create_key()
        assert error_of(raised)[:2] == (400, "ThrottlingException")
        assert state(endpoint)["counters"] == {"kms:CreateKey": {"passed": 0, "throttled": 1, "failed": 0}}


def test_the_log_names_each_operation_and_marks_an_sdk_retry(tmp_path, monkeypatch):
    """A retried create is how a non-idempotent call gets applied twice: the emulator's log has to show one."""
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"throttle": {"kms:CreateKey": 0}}))
    log = tmp_path / "emulator.log"
    with private_emulator(log) as endpoint:
        kms = emulator_client(endpoint, "kms", config=Config(retries={"total_max_attempts": 2, "mode": "standard"}))
        with pytest.raises(ClientError):
            kms.create_key()
    lines = [line for line in log.read_text().splitlines() if "TrentService.CreateKey" in line]
    assert len(lines) == 2, lines
    assert '"POST / HTTP/1.1" 400 ' in lines[0] and lines[0].endswith("[TrentService.CreateKey]"), lines
    retry = r"\[TrentService.CreateKey; SDK retry, attempt 2 of invocation [0-9a-f-]{36}\]$"
    assert re.search(retry, lines[1]), lines


def test_a_bad_environment_variable_stops_the_start_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(FAULTS_ENV, '{"throttle": {"kms:Createkey": 1}}')
    emulator = LocalAws()
    with pytest.raises(FaultConfigError, match=r"^LOCAL_AWS_FAULTS: throttle\['kms:Createkey'\]: kms has no"):
        emulator.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.port
    monkeypatch.chdir(tmp_path)
    assert main(["start", "--port", str(free_port())]) == 1  # refused before spawning anything
    assert capsys.readouterr().err.startswith("error: LOCAL_AWS_FAULTS: throttle['kms:Createkey']")
    assert not (tmp_path / ".local-aws").exists()
