"""`python -m tools.request_key` against a local HTTP server standing in for API Gateway.

Terraform is replaced by a script on PATH printing chosen outputs (one test uses the real binary on a local
state file), and SSM by moto; with `--local` (or `AWS_ENDPOINT_URL`), the same server also answers SSM
`GetParameter` as the emulator would, so a test sees how the key was asked for (signature, region).
The server answers a script of statuses, resets and stalls, so retries are real HTTP; the backoff's sleep is
recorded instead of slept.
"""

import contextlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from local_aws import HEALTH_PATH
from tools import request_key
from tools.paths import PROJECT_ROOT

API_KEY = "k3y-" + "s3cr3t" * 6
PARAMETER = "/APIGateway/APIKeys/kms-key-generator"
CREATED = {
    "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "KeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "AliasName": "alias/payments",
}
REQUIRED_ARGS = ["--account", "123456789012", "--region", "eu-west-1", "--alias", "payments"]
CLIENT_TOKEN_RULE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # constructs_lib/api_contract.py's client_token
STALL_SECONDS = 1.0  # a "stall" answer: longer than the tests' --timeout, so the attempt times out


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch):
    """No proxy between us and 127.0.0.1, dummy AWS credentials, no API key from the caller's shell."""
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        request_key.API_KEY_ENV_VAR,
        "AWS_REGION",
        "AWS_SESSION_TOKEN",
        request_key.LOCAL_ENV_VAR,
        request_key.PORT_ENV_VAR,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def api_state():
    """What a fake API answers (`script` in order, then `answer` for ever) and what it was asked."""
    return SimpleNamespace(requests=[], ssm_requests=[], script=[], answer=(201, CREATED))


@contextlib.contextmanager
def serving(state, port=0):
    """A POST endpoint on 127.0.0.1:`port` that checks x-api-key, records requests and answers as `state` says.

    An answer is `(status, payload[, headers])`, `"reset"` (the connection closed unanswered) or `"stall"` (no
    answer for STALL_SECONDS). SSM `GetParameter` calls (as the emulator gets them with `--local`) go to
    `state.ssm_requests` and are answered with the API key for PARAMETER.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {name.lower(): value for name, value in self.headers.items()}
            if headers.get("x-amz-target") == "AmazonSSM.GetParameter":
                self.answer_ssm(headers, json.loads(body))
                return
            state.requests.append({"path": self.path, "headers": headers, "body": json.loads(body)})
            if self.headers.get("x-api-key") != API_KEY:
                answer = (403, {"message": "Forbidden"})
            else:
                answer = state.script.pop(0) if state.script else state.answer
            if answer == "reset":
                self.close_connection = True
                return
            if answer == "stall":
                time.sleep(STALL_SECONDS)
                self.close_connection = True
                return
            status, payload, extra_headers = (*answer, {})[:3]
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            """The emulator's health check, which `--local` asks before anything else."""
            data = b'{"service": "local_aws"}'
            self.send_response(200 if self.path == HEALTH_PATH else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def answer_ssm(self, headers, request):
            state.ssm_requests.append({"headers": headers, "body": request})
            if request.get("Name") == PARAMETER:
                status = 200
                payload = {"Parameter": {"Name": PARAMETER, "Type": "SecureString", "Value": API_KEY, "Version": 1}}
            else:
                status, payload = 400, {"__type": "ParameterNotFound", "message": "not found"}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            """Keep the test output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.port = server.server_address[1]
    state.url = f"http://127.0.0.1:{state.port}/v1/keys"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def api():
    """The fake API on a free port (see `serving`)."""
    with serving(api_state()) as state:
        yield state


def free_port():
    """A port nothing listens on (closed once the probe is)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fake_terraform(tmp_path, monkeypatch):
    """A `terraform` on PATH that records its arguments and prints what the test configures."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "terraform"
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        with open(os.environ["FAKE_TF_ARGS"], "w") as log:
            json.dump(sys.argv[1:], log)
        with open(os.environ["FAKE_TF_ARGS"] + ".env", "w") as log:
            json.dump({{name: value for name, value in os.environ.items() if name.startswith("AWS_")}}, log)
        sys.stdout.write(os.environ.get("FAKE_TF_STDOUT", ""))
        sys.stderr.write(os.environ.get("FAKE_TF_STDERR", ""))
        sys.exit(int(os.environ.get("FAKE_TF_EXIT", "0")))
        """)
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TF_ARGS", str(tmp_path / "terraform-args.json"))
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()

    def configure(outputs=None, exit_code=0, stderr=""):
        values = outputs or {}
        shown = {name: {"sensitive": False, "type": "string", "value": value} for name, value in values.items()}
        monkeypatch.setenv("FAKE_TF_STDOUT", json.dumps(shown))
        monkeypatch.setenv("FAKE_TF_EXIT", str(exit_code))
        monkeypatch.setenv("FAKE_TF_STDERR", stderr)

    return SimpleNamespace(
        configure=configure,
        stack_dir=str(stack_dir),
        args=lambda: json.loads((tmp_path / "terraform-args.json").read_text()),
        aws_env=lambda: json.loads((tmp_path / "terraform-args.json.env").read_text()),
    )


def run(capsys, *args, sleep=lambda seconds: None, rand=random.random):
    """Run the CLI in-process, its backoff not sleeping; returns (exit status, stdout, stderr) and checks the key
    never shows."""
    status = request_key.main([*REQUIRED_ARGS, *args], sleep=sleep, rand=rand)
    out, err = capsys.readouterr()
    assert API_KEY not in out + err
    return status, out, err


def tokens_sent(api):
    return [request["body"]["client_token"] for request in api.requests]


# --- Talking to the API -----------------------------------------------------------------------------------------


def test_posts_request_and_prints_created_key(api, capsys):
    status, out, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--description", 'say "hi"\nbye')

    assert (status, json.loads(out), err) == (0, CREATED, "")
    (sent,) = api.requests
    assert sent["path"] == "/v1/keys"
    assert sent["headers"]["content-type"] == "application/json"
    token = sent["body"]["client_token"]
    assert CLIENT_TOKEN_RULE.fullmatch(token) and len(token) == 32
    assert sent["body"] == {
        "account": "123456789012",
        "region": "eu-west-1",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": "payments",
        "key_description": 'say "hi"\nbye',
        "client_token": token,
    }


def test_sends_key_spec_only_when_given(api, capsys):
    run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--key-usage", "SIGN_VERIFY", "--key-spec", "RSA_2048")

    assert api.requests[0]["body"]["key_usage"] == "SIGN_VERIFY"
    assert api.requests[0]["body"]["key_spec"] == "RSA_2048"


def test_reads_api_key_from_environment(api, capsys, monkeypatch):
    monkeypatch.setenv(request_key.API_KEY_ENV_VAR, API_KEY)

    status, out, _ = run(capsys, "--endpoint", api.url)

    assert (status, json.loads(out)) == (0, CREATED)


GAVE_UP = (
    " (gave up after 8 attempts; rerun with --client-token t0k3n to get the key an unanswered attempt may "
    "have created, not a second one)"
)


@pytest.mark.parametrize(
    ("status", "body", "line", "attempts"),
    [
        (
            400,
            {"message": "BadRequest: KeyAlias: must not be empty after the alias/ prefix"},
            "error: bad request: KeyAlias: must not be empty after the alias/ prefix",
            1,
        ),
        (
            403,
            {"message": "Forbidden: Account: 111122223333 is not allowed"},
            "error: forbidden (wrong API key or account not allowed): Account: 111122223333 is not allowed",
            1,
        ),
        (
            409,
            {"message": "Conflict: alias alias/payments already exists (key k-1)"},
            "error: conflict: alias alias/payments already exists (key k-1)",
            1,
        ),
        (
            429,
            {"message": "Limit Exceeded"},
            "error: quota of this API key's usage plan used up for its period (day, week or month): Limit Exceeded",
            1,
        ),
        (418, b"", "error: unexpected HTTP 418: (no message)", 1),
        (201, b"not json", "error: the service answered HTTP 201 with a body that is not JSON: not json", 1),
        (
            429,
            {"message": "Too Many Requests"},
            "error: throttled: too many requests for this API key, the stage or KMS: Too Many Requests" + GAVE_UP,
            8,
        ),
        (
            429,
            {"message": "TooManyRequests: AWS is throttling key creation in eu-west-1"},
            "error: throttled: too many requests for this API key, the stage or KMS: AWS is throttling key creation in "
            "eu-west-1" + GAVE_UP,
            8,
        ),
        (
            503,
            {"message": "ServiceUnavailable: KMS quota reached"},
            "error: server error (HTTP 503): KMS quota reached" + GAVE_UP,
            8,
        ),
        (
            500,
            {"message": "Internal server error"},
            "error: server error (HTTP 500): Internal server error" + GAVE_UP,
            8,
        ),
        (502, b"<html>Bad\n  Gateway</html>", "error: server error (HTTP 502): <html>Bad Gateway</html>" + GAVE_UP, 8),
        (
            504,
            {"message": "Endpoint request timed out"},
            "error: server error (HTTP 504): Endpoint request timed out" + GAVE_UP,
            8,
        ),
    ],
    ids=[
        "400",
        "403",
        "409",
        "429-quota",
        "418-empty",
        "201-not-json",
        "429-gateway-throttle",
        "429-service",
        "503",
        "500",
        "502-html",
        "504",
    ],
)
def test_prints_one_line_per_error_status_and_fails_after_retrying_only_transient_ones(
    api, capsys, status, body, line, attempts
):
    """Client errors and a spent quota are final; throttling and 5xx are retried, by default 8 times in all."""
    api.answer = (status, body)
    slept = []

    exit_status, out, err = run(
        capsys, "--endpoint", api.url, "--api-key", API_KEY, "--client-token", "t0k3n", sleep=slept.append
    )

    assert (exit_status, out, err) == (1, "", line + "\n")
    assert tokens_sent(api) == ["t0k3n"] * attempts
    assert len(slept) == attempts - 1


def test_wrong_api_key_is_forbidden(api, capsys):
    status, _, err = run(capsys, "--endpoint", api.url, "--api-key", "not-the-key")

    assert (status, err) == (1, "error: forbidden (wrong API key or account not allowed): Forbidden\n")


def test_unreachable_endpoint_is_one_line_error_after_every_attempt(capsys):
    url = f"http://127.0.0.1:{free_port()}/v1/keys"
    slept = []

    status, _, err = run(
        capsys,
        "--endpoint",
        url,
        "--api-key",
        API_KEY,
        "--timeout",
        "5",
        "--max-attempts",
        "3",
        "--client-token",
        "t0k3n",
        sleep=slept.append,
    )

    assert status == 1
    assert err.startswith(f"error: cannot reach {url}: ") and err.count("\n") == 1
    assert err.endswith(
        " (gave up after 3 attempts; rerun with --client-token t0k3n to get the key an unanswered "
        "attempt may have created, not a second one)\n"
    )
    assert len(slept) == 2


@pytest.mark.parametrize("endpoint", ["keys.example.com/v1/keys", "file:///etc/hostname"])
def test_rejects_endpoint_that_is_not_http(capsys, endpoint):
    status, _, err = run(capsys, "--endpoint", endpoint, "--api-key", API_KEY)

    assert (status, err) == (1, f"error: not an http(s) URL: {endpoint}\n")


# --- Retries ---------------------------------------------------------------------------------------------------------


def test_throttled_with_retry_after_waits_at_least_that_long(api, capsys):
    api.script = [(429, {"message": "TooManyRequests: AWS is throttling key creation"}, {"Retry-After": "2"})]
    slept = []

    status, out, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY, sleep=slept.append)

    assert (status, json.loads(out), err) == (0, CREATED, "created after 2 attempts (1 throttled)\n")
    assert len(api.requests) == 2
    (delay,) = slept
    assert delay >= 2


def test_retries_unavailable_with_the_same_client_token(api, capsys):
    api.script = [(503, {"message": "ServiceUnavailable: KMS quota reached"})] * 2

    status, out, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY)

    assert (status, json.loads(out), err) == (0, CREATED, "created after 3 attempts (2 unavailable)\n")
    first, *others = tokens_sent(api)
    assert CLIENT_TOKEN_RULE.fullmatch(first) and others == [first, first]
    assert [request["body"] for request in api.requests[1:]] == [api.requests[0]["body"]] * 2


def test_retries_a_refused_connection_until_the_api_listens(capsys):
    """The first attempt finds nothing on the port; the API starts while the CLI backs off."""
    state, port, started = api_state(), free_port(), []
    with contextlib.ExitStack() as running:

        def start_api(seconds):
            if not started:
                started.append(running.enter_context(serving(state, port)))

        status, out, err = run(
            capsys, "--endpoint", f"http://127.0.0.1:{port}/v1/keys", "--api-key", API_KEY, sleep=start_api
        )

    assert (status, json.loads(out), err) == (0, CREATED, "created after 2 attempts (1 unreachable)\n")
    assert len(state.requests) == 1


def test_retries_a_reset_connection_a_timeout_and_gateway_errors(api, capsys):
    api.script = [
        "reset",
        "stall",
        (502, {"message": "Internal server error"}),
        (504, {"message": "Endpoint request timed out"}),
    ]

    status, out, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--timeout", "0.2")

    assert (status, json.loads(out)) == (0, CREATED)
    assert err == "created after 5 attempts (2 unreachable, 1 HTTP 502, 1 HTTP 504)\n"
    assert len(set(tokens_sent(api))) == 1 and len(api.requests) == 5


def test_a_final_answer_after_retries_says_what_was_retried(api, capsys):
    api.script = [(429, {"message": "Too Many Requests"})]
    api.answer = (409, {"message": "Conflict: alias alias/payments already exists (key k-1)"})

    status, _, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY)

    assert (status, err) == (
        1,
        "error: conflict: alias alias/payments already exists (key k-1) (after 2 attempts: 1 throttled)\n",
    )
    assert len(api.requests) == 2


def test_max_attempts_bounds_the_attempts(api, capsys):
    api.answer = (503, {"message": "ServiceUnavailable: KMS quota reached"})

    status, _, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--max-attempts", "3")

    assert status == 1 and len(api.requests) == 3
    assert err.startswith("error: server error (HTTP 503): KMS quota reached (gave up after 3 attempts; ")

    status, _, _ = run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--max-attempts", "1")

    assert status == 1 and len(api.requests) == 4


def test_each_run_is_a_new_logical_request_with_its_own_token(api, capsys):
    for _ in range(2):
        assert run(capsys, "--endpoint", api.url, "--api-key", API_KEY)[0] == 0

    first, second = tokens_sent(api)
    assert first != second and all(CLIENT_TOKEN_RULE.fullmatch(token) for token in (first, second))


def test_client_token_flag_is_sent_and_a_replay_is_reported(api, capsys):
    api.answer = (201, {**CREATED, "Replayed": True})

    status, out, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--client-token", "deploy-42_a")

    assert (status, json.loads(out)) == (0, {**CREATED, "Replayed": True})
    assert err == "replayed: an earlier request with client token deploy-42_a created this key; no new key\n"
    assert tokens_sent(api) == ["deploy-42_a"]


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--client-token", ""),
        ("--client-token", "a" * 65),
        ("--client-token", "has space"),
        ("--client-token", "dot.ted"),
        ("--client-token", "line\n"),
        ("--max-attempts", "0"),
        ("--max-attempts", "x"),
    ],
)
def test_rejects_client_tokens_outside_the_contract_and_no_attempts(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        request_key.parse_args([*REQUIRED_ARGS, flag, value], {})

    assert exit_info.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err


@pytest.mark.parametrize(("status", "base"), [(429, 0.5), (503, 0.5), (502, 0.1), (None, 0.1)])
def test_backoff_is_full_jitter_under_a_capped_exponential(status, base):
    """The SDKs' standard mode: rand() * min(20 s, base * 2**retry), base 0.5 s when throttled, else 0.1 s."""
    ceilings = [request_key.backoff_delay(retry, status, None, lambda: 1.0) for retry in range(12)]
    assert ceilings == [min(20.0, base * 2**retry) for retry in range(12)]
    assert ceilings[-1] == 20.0
    assert [request_key.backoff_delay(retry, status, None, lambda: 0.0) for retry in range(12)] == [0.0] * 12
    jitter = random.Random(7).random
    for retry in range(40):
        assert 0.0 <= request_key.backoff_delay(retry, status, None, jitter) <= min(20.0, base * 2**retry)


def test_retry_after_is_a_floor_not_a_ceiling():
    assert request_key.backoff_delay(0, 429, 2.0, lambda: 0.0) == 2.0
    assert request_key.backoff_delay(8, 429, 2.0, lambda: 0.5) == 10.0


def test_send_with_retries_counts_attempts_and_raises_the_last_unreachable():
    answers = [
        request_key.Unreachable("refused"),
        request_key.Response(429, "{}", 1.0),
        request_key.Response(201, "{}"),
    ]

    def send():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    response, attempts = request_key.send_with_retries(send, max_attempts=5, sleep=lambda s: None, rand=lambda: 0.0)

    assert response.status == 201
    assert attempts == [request_key.Attempt(None, 0.0), request_key.Attempt(429, 1.0), request_key.Attempt(201)]

    def refused():
        raise request_key.Unreachable("refused")

    with pytest.raises(request_key.Unreachable) as failure:
        request_key.send_with_retries(refused, max_attempts=2, sleep=lambda s: None)
    assert [attempt.status for attempt in failure.value.attempts] == [None, None]
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        request_key.send_with_retries(refused, max_attempts=0)


# --- Endpoint and key from the deployed stack ------------------------------------------------------------------------


def test_reads_endpoint_from_outputs_and_key_from_ssm(api, capsys, fake_terraform):
    fake_terraform.configure({"key_endpoint_url": api.url, "ssm_parameter_name": PARAMETER})

    with mock_aws():
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value=API_KEY, Type="SecureString")
        status, out, _ = run(capsys, "--stack-dir", fake_terraform.stack_dir)

    assert (status, json.loads(out)) == (0, CREATED)
    assert api.requests[0]["headers"]["x-api-key"] == API_KEY
    assert fake_terraform.args() == [f"-chdir={fake_terraform.stack_dir}", "output", "-json", "-no-color"]


def test_endpoint_flag_wins_over_outputs(api, capsys, fake_terraform):
    fake_terraform.configure({"key_endpoint_url": "http://127.0.0.1:9/unused", "ssm_parameter_name": PARAMETER})

    with mock_aws():
        boto3.client("ssm").put_parameter(Name=PARAMETER, Value=API_KEY, Type="SecureString")
        status, _, _ = run(capsys, "--stack-dir", fake_terraform.stack_dir, "--endpoint", api.url)

    assert status == 0 and len(api.requests) == 1


def test_missing_output_is_clear_error(capsys, fake_terraform):
    fake_terraform.configure({"ssm_parameter_name": PARAMETER})

    status, _, err = run(capsys, "--stack-dir", fake_terraform.stack_dir)

    assert (status, err) == (
        1,
        f"error: stack {fake_terraform.stack_dir} has no key_endpoint_url output: "
        "deploy it first, or pass --endpoint/--api-key\n",
    )


def test_missing_ssm_parameter_is_clear_error(api, capsys, fake_terraform):
    fake_terraform.configure({"key_endpoint_url": api.url, "ssm_parameter_name": PARAMETER})

    with mock_aws():
        status, _, err = run(capsys, "--stack-dir", fake_terraform.stack_dir)

    assert status == 1
    assert err.startswith(f"error: cannot read the API key from SSM parameter {PARAMETER}: ")
    assert "ParameterNotFound" in err and api.requests == []


def test_terraform_failure_shows_its_error_without_noise(capsys, fake_terraform):
    warning = "╷\n│ Warning: Unable to open CLI configuration file\n╵\n"
    error = "╷\n│ Error: Backend initialization required\n│\n╵\n"
    fake_terraform.configure(exit_code=1, stderr=warning + error)

    status, _, err = run(capsys, "--stack-dir", fake_terraform.stack_dir)

    assert (status, err) == (
        1,
        f"error: terraform output failed in {fake_terraform.stack_dir}: Error: Backend initialization required\n",
    )


def test_missing_terraform_is_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    status, _, err = run(capsys, "--stack-dir", str(tmp_path))

    assert (status, err) == (1, "error: terraform not found on PATH: pass --endpoint and --api-key instead\n")


def test_missing_stack_dir_is_clear_error(capsys, tmp_path):
    missing = str(tmp_path / "absent")

    status, _, err = run(capsys, "--stack-dir", missing)

    assert (status, err) == (
        1,
        f"error: stack directory {missing} not found: deploy the stack, or pass --endpoint and --api-key\n",
    )


@pytest.mark.terraform
def test_reads_outputs_with_real_terraform(tmp_path):
    assert shutil.which("terraform"), "terraform must be on PATH"
    state = {
        "version": 4,
        "terraform_version": "1.10.0",
        "serial": 1,
        "lineage": "test",
        "resources": [],
        "outputs": {
            "key_endpoint_url": {"value": "https://a1.execute-api.eu-west-1.amazonaws.com/v1/keys", "type": "string"}
        },
    }
    (tmp_path / "terraform.tfstate").write_text(json.dumps(state))

    assert request_key.terraform_outputs(str(tmp_path)) == {
        "key_endpoint_url": "https://a1.execute-api.eu-west-1.amazonaws.com/v1/keys"
    }


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("https://a1b2c3.execute-api.eu-west-2.amazonaws.com/v1/keys", "eu-west-2"),
        ("https://a1b2c3.execute-api.cn-north-1.amazonaws.com.cn/v1/keys", "cn-north-1"),
        ("https://keys.example.com/v1/keys", None),
        ("http://127.0.0.1:4566/restapis/abc/v1/_user_request_/keys", None),
    ],
)
def test_api_key_region_follows_execute_api_url(endpoint, region):
    assert request_key.region_of(endpoint) == region


def test_runs_as_module():
    completed = subprocess.run(
        [sys.executable, "-m", "tools.request_key", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )

    assert completed.returncode == 0
    assert completed.stdout.startswith("usage: python -m tools.request_key")


# --- The API key's SSM region without --local ------------------------------------------------------------------------


@pytest.fixture
def no_aws_config(tmp_path, monkeypatch):
    """No region from a config file of this machine: only the environment and the outputs say where."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.delenv("AWS_DEFAULT_REGION")


@pytest.mark.parametrize(
    ("environment", "parameter_region"),
    [
        ({"AWS_REGION": "eu-west-2"}, "eu-west-2"),
        ({"AWS_DEFAULT_REGION": "eu-west-3"}, "eu-west-3"),
        ({"AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "eu-west-3"}, "eu-west-2"),
        ({}, "ap-southeast-2"),
    ],
    ids=["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION-first", "stack-region-last"],
)
def test_api_key_region_for_an_endpoint_that_is_not_execute_api(
    api, capsys, fake_terraform, no_aws_config, monkeypatch, environment, parameter_region
):
    """A custom domain names no region: the caller's region, else the stack's `region` output, never a crash."""
    fake_terraform.configure({"key_endpoint_url": api.url, "ssm_parameter_name": PARAMETER, "region": "ap-southeast-2"})
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with mock_aws():
        boto3.client("ssm", region_name=parameter_region).put_parameter(
            Name=PARAMETER, Value=API_KEY, Type="SecureString"
        )
        status, out, err = run(capsys, "--stack-dir", fake_terraform.stack_dir)

    assert (status, json.loads(out), err) == (0, CREATED, "")
    assert api.requests[0]["headers"]["x-api-key"] == API_KEY


def test_api_key_is_read_from_aws_endpoint_url_in_aws_region(api, capsys, fake_terraform, no_aws_config, monkeypatch):
    """botocore's own `AWS_ENDPOINT_URL` and the CLI's `AWS_REGION`: the SSM call goes where and how they say."""
    fake_terraform.configure({"key_endpoint_url": api.url, "ssm_parameter_name": PARAMETER, "region": "us-east-1"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{api.port}")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")

    status, out, err = run(capsys, "--stack-dir", fake_terraform.stack_dir)

    assert (status, json.loads(out), err) == (0, CREATED, "")
    (asked,) = api.ssm_requests
    assert _credential_of(asked["headers"]["authorization"]) == "testing/eu-west-2/ssm"


def test_execute_api_region_wins_over_aws_region(monkeypatch):
    endpoint = "https://a1b2c3.execute-api.eu-central-1.amazonaws.com/v1/keys"
    environ = {"AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "eu-west-3"}

    assert request_key.ssm_region(endpoint, {"region": "us-east-1"}, environ) == "eu-central-1"


# --- --local: the deployment of `make deploy-local` ------------------------------------------------------------------

LOCAL_OUTPUTS = {
    "rest_api_id": "a1b2c3d4e5",
    "stage_name": "v1",
    "region": "eu-west-1",
    "key_endpoint_url": "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1/keys",
    "ssm_parameter_name": PARAMETER,
}


def _credential_of(authorization: str) -> str:
    """`<access key>/<date>/<region>/<service>` from a SigV4 Authorization header, without the date."""
    key, _, region, service = re.search(r"Credential=([^,]+)/aws4_request", authorization).group(1).split("/")
    return f"{key}/{region}/{service}"


@pytest.mark.parametrize("switch", ["--local", "KMSKG_LOCAL=1"])
def test_local_posts_to_the_emulator_data_plane_with_the_key_from_its_ssm(
    api, capsys, fake_terraform, monkeypatch, switch
):
    fake_terraform.configure(LOCAL_OUTPUTS)
    if switch == "--local":
        flags = ["--local", "--port", str(api.port)]
    else:
        monkeypatch.setenv(request_key.LOCAL_ENV_VAR, "1")
        monkeypatch.setenv(request_key.PORT_ENV_VAR, str(api.port))
        flags = []

    status, out, err = run(capsys, *flags, "--stack-dir", fake_terraform.stack_dir)

    assert (status, json.loads(out), err) == (0, CREATED, "")
    (sent,) = api.requests
    assert sent["path"] == "/restapis/a1b2c3d4e5/v1/_user_request_/keys"
    assert sent["headers"]["x-api-key"] == API_KEY
    assert sent["body"]["account"] == "123456789012"
    (asked,) = api.ssm_requests
    assert asked["body"] == {"Name": PARAMETER, "WithDecryption": True}
    assert _credential_of(asked["headers"]["authorization"]) == "testing/eu-west-1/ssm"
    # Terraform reads the state from the emulator's S3, with its environment (tools.local.emulator_env).
    assert fake_terraform.args() == [f"-chdir={fake_terraform.stack_dir}", "output", "-json", "-no-color"]
    tf_env = fake_terraform.aws_env()
    assert tf_env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{api.port}"
    assert (tf_env["AWS_ACCESS_KEY_ID"], tf_env["AWS_SECRET_ACCESS_KEY"]) == ("testing", "testing")


def test_local_never_uses_the_callers_aws_credentials(api, capsys, fake_terraform, tmp_path, monkeypatch):
    """A profile that does not exist, real-looking keys and a config that would fail: the emulator sees none."""
    fake_terraform.configure(LOCAL_OUTPUTS)
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = sa-east-1\ncredential_process = /bin/false\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALCALLERKEY000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-session-token")

    status, out, err = run(capsys, "--local", "--port", str(api.port), "--stack-dir", fake_terraform.stack_dir)

    assert (status, json.loads(out), err) == (0, CREATED, "")
    (asked,) = api.ssm_requests
    assert _credential_of(asked["headers"]["authorization"]) == "testing/eu-west-1/ssm"
    assert "x-amz-security-token" not in asked["headers"]
    tf_env = fake_terraform.aws_env()
    assert tf_env["AWS_ACCESS_KEY_ID"] == "testing"
    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"} & set(tf_env)


def test_local_api_key_and_endpoint_flags_still_win(api, capsys, fake_terraform):
    fake_terraform.configure(LOCAL_OUTPUTS)

    status, _, _ = run(
        capsys,
        "--local",
        "--port",
        str(api.port),
        "--stack-dir",
        fake_terraform.stack_dir,
        "--endpoint",
        api.url,
        "--api-key",
        API_KEY,
    )

    assert status == 0
    assert api.requests[0]["path"] == "/v1/keys" and api.ssm_requests == []


def test_local_without_the_data_plane_outputs_is_clear_error(api, capsys, fake_terraform):
    fake_terraform.configure({"ssm_parameter_name": PARAMETER, "stage_name": "v1"})

    status, _, err = run(capsys, "--local", "--port", str(api.port), "--stack-dir", fake_terraform.stack_dir)

    assert (status, err) == (
        1,
        f"error: stack {fake_terraform.stack_dir} has no rest_api_id output: "
        "deploy it first, or pass --endpoint/--api-key\n",
    )


def test_local_missing_parameter_in_the_emulator_is_clear_error(api, capsys, fake_terraform):
    fake_terraform.configure(LOCAL_OUTPUTS | {"ssm_parameter_name": "/no/such/parameter"})

    status, _, err = run(capsys, "--local", "--port", str(api.port), "--stack-dir", fake_terraform.stack_dir)

    assert status == 1 and api.requests == []
    assert err.startswith("error: cannot read the API key from SSM parameter /no/such/parameter: ")
    assert "ParameterNotFound" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        ([], {}, (False, None, request_key.DEFAULT_STACK_DIR)),
        (["--local"], {}, (True, 4566, ".local-aws/stacks/kms-key-generator")),
        (["--local"], {"LOCAL_AWS_PORT": "4599"}, (True, 4599, ".local-aws/stacks/kms-key-generator")),
        (
            ["--local", "--port", "4600"],
            {"LOCAL_AWS_PORT": "4599"},
            (True, 4600, ".local-aws/stacks/kms-key-generator"),
        ),
        (["--stack-dir", "elsewhere"], {"KMSKG_LOCAL": "1"}, (True, 4566, "elsewhere")),
        ([], {"KMSKG_LOCAL": "true"}, (True, 4566, ".local-aws/stacks/kms-key-generator")),
        ([], {"KMSKG_LOCAL": "0"}, (False, None, request_key.DEFAULT_STACK_DIR)),
        ([], {"KMSKG_LOCAL": ""}, (False, None, request_key.DEFAULT_STACK_DIR)),
    ],
)
def test_local_switch_port_and_stack_dir(argv, environ, expected):
    args = request_key.parse_args([*REQUIRED_ARGS, *argv], environ)

    assert (args.local, args.port, args.stack_dir) == expected


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--port", "4566"], {}, "--port needs --local (or KMSKG_LOCAL=1)"),
        (["--local"], {"LOCAL_AWS_PORT": "http"}, "$LOCAL_AWS_PORT is not a port number: 'http'"),
    ],
)
def test_local_port_mistakes_are_usage_errors(capsys, argv, environ, message):
    with pytest.raises(SystemExit) as exit_info:
        request_key.parse_args([*REQUIRED_ARGS, *argv], environ)

    assert exit_info.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(f"error: {message}")


def test_local_with_nothing_deployed_is_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    status, _, err = run(capsys, "--local")

    assert (status, err) == (
        1,
        "error: stack directory .local-aws/stacks/kms-key-generator not found: "
        "run `make deploy-local` first, or pass --stack-dir\n",
    )


def test_local_without_an_emulator_is_clear_error(capsys, fake_terraform):
    port = free_port()

    status, _, err = run(capsys, "--local", "--port", str(port), "--stack-dir", fake_terraform.stack_dir)

    assert (status, err) == (
        1,
        f"error: no emulator on http://127.0.0.1:{port}: run `make deploy-local` first, or pass --port\n",
    )
