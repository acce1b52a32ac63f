"""`python -m tools.request_key` against a local HTTP server standing in for API Gateway.

Terraform is replaced by a script on PATH printing chosen outputs (one test uses the real binary on a local
state file), and SSM by moto; with `--local`, the same server also answers SSM `GetParameter` as the emulator
would, so a test sees how the key was asked for (signature, region).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from local_aws import HEALTH_PATH
from tools import request_key

PROJECT_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "k3y-" + "s3cr3t" * 6
PARAMETER = "/APIGateway/APIKeys/kms-key-generator"
CREATED = {
    "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "KeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "AliasName": "alias/payments",
}
REQUIRED_ARGS = ["--account", "123456789012", "--region", "eu-west-1", "--alias", "payments"]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch):
    """No proxy between us and 127.0.0.1, dummy AWS credentials, no API key from the caller's shell."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                 "AWS_PROFILE", "AWS_ENDPOINT_URL", request_key.API_KEY_ENV_VAR,
                 "AWS_REGION", "AWS_SESSION_TOKEN", request_key.LOCAL_ENV_VAR, request_key.PORT_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def api():
    """A POST endpoint that checks x-api-key, records requests and answers with `api.answer`.

    SSM `GetParameter` calls (as the emulator gets them with `--local`) go to `api.ssm_requests` and are answered
    with the API key for PARAMETER.
    """
    state = SimpleNamespace(requests=[], ssm_requests=[], answer=(201, CREATED))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {name.lower(): value for name, value in self.headers.items()}
            if headers.get("x-amz-target") == "AmazonSSM.GetParameter":
                self.answer_ssm(headers, json.loads(body))
                return
            state.requests.append({"path": self.path, "headers": headers, "body": json.loads(body)})
            if self.headers.get("x-api-key") != API_KEY:
                status, payload = 403, {"message": "Forbidden"}
            else:
                status, payload = state.answer
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.port = server.server_address[1]
    state.url = f"http://127.0.0.1:{state.port}/v1/keys"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def fake_terraform(tmp_path, monkeypatch):
    """A `terraform` on PATH that records its arguments and prints what the test configures."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "terraform"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        with open(os.environ["FAKE_TF_ARGS"], "w") as log:
            json.dump(sys.argv[1:], log)
        with open(os.environ["FAKE_TF_ARGS"] + ".env", "w") as log:
            json.dump({{name: value for name, value in os.environ.items() if name.startswith("AWS_")}}, log)
        sys.stdout.write(os.environ.get("FAKE_TF_STDOUT", ""))
        sys.stderr.write(os.environ.get("FAKE_TF_STDERR", ""))
        sys.exit(int(os.environ.get("FAKE_TF_EXIT", "0")))
        """))
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


def run(capsys, *args):
    """Run the CLI in-process; returns (exit status, stdout, stderr) and checks the key never shows."""
    status = request_key.main([*REQUIRED_ARGS, *args])
    out, err = capsys.readouterr()
    assert API_KEY not in out + err
    return status, out, err


# --- Talking to the API -----------------------------------------------------------------------------------------


def test_posts_request_and_prints_created_key(api, capsys):
    status, out, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--description", 'say "hi"\nbye')

    assert (status, json.loads(out), err) == (0, CREATED, "")
    (sent,) = api.requests
    assert sent["path"] == "/v1/keys"
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["body"] == {
        "account": "123456789012",
        "region": "eu-west-1",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": "payments",
        "key_description": 'say "hi"\nbye',
    }


def test_sends_key_spec_only_when_given(api, capsys):
    run(capsys, "--endpoint", api.url, "--api-key", API_KEY, "--key-usage", "SIGN_VERIFY", "--key-spec", "RSA_2048")

    assert api.requests[0]["body"]["key_usage"] == "SIGN_VERIFY"
    assert api.requests[0]["body"]["key_spec"] == "RSA_2048"


def test_reads_api_key_from_environment(api, capsys, monkeypatch):
    monkeypatch.setenv(request_key.API_KEY_ENV_VAR, API_KEY)

    status, out, _ = run(capsys, "--endpoint", api.url)

    assert (status, json.loads(out)) == (0, CREATED)


@pytest.mark.parametrize(
    ("status", "body", "line"),
    [
        (400, {"message": "BadRequest: KeyAlias: must not be empty after the alias/ prefix"},
         "error: bad request: KeyAlias: must not be empty after the alias/ prefix"),
        (403, {"message": "Forbidden: Account: 111122223333 is not allowed"},
         "error: forbidden (wrong API key or account not allowed): Account: 111122223333 is not allowed"),
        (409, {"message": "Conflict: alias alias/payments already exists (key k-1)"},
         "error: conflict: alias alias/payments already exists (key k-1)"),
        (429, {"message": "Too Many Requests"},
         "error: throttled: request rate or quota of this API key exceeded, retry later: Too Many Requests"),
        (500, {"message": "Internal server error"}, "error: server error (HTTP 500): Internal server error"),
        (502, b"<html>Bad\n  Gateway</html>", "error: server error (HTTP 502): <html>Bad Gateway</html>"),
        (418, b"", "error: unexpected HTTP 418: (no message)"),
        (201, b"not json", "error: the service answered HTTP 201 with a body that is not JSON: not json"),
    ],
    ids=["400", "403", "409", "429", "500", "502-html", "418-empty", "201-not-json"],
)
def test_prints_one_line_per_error_status_and_fails(api, capsys, status, body, line):
    api.answer = (status, body)

    exit_status, out, err = run(capsys, "--endpoint", api.url, "--api-key", API_KEY)

    assert (exit_status, out, err) == (1, "", line + "\n")


def test_wrong_api_key_is_forbidden(api, capsys):
    status, _, err = run(capsys, "--endpoint", api.url, "--api-key", "not-the-key")

    assert (status, err) == (1, "error: forbidden (wrong API key or account not allowed): Forbidden\n")


def test_unreachable_endpoint_is_one_line_error(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/keys"  # closed once the probe is

    status, _, err = run(capsys, "--endpoint", url, "--api-key", API_KEY, "--timeout", "5")

    assert status == 1
    assert err.startswith(f"error: cannot reach {url}: ") and err.count("\n") == 1


@pytest.mark.parametrize("endpoint", ["keys.example.com/v1/keys", "file:///etc/hostname"])
def test_rejects_endpoint_that_is_not_http(capsys, endpoint):
    status, _, err = run(capsys, "--endpoint", endpoint, "--api-key", API_KEY)

    assert (status, err) == (1, f"error: not an http(s) URL: {endpoint}\n")


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

    assert (status, err) == (1, f"error: stack {fake_terraform.stack_dir} has no key_endpoint_url output: "
                                "deploy it first, or pass --endpoint/--api-key\n")


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
        1, f"error: terraform output failed in {fake_terraform.stack_dir}: Error: Backend initialization required\n"
    )


def test_missing_terraform_is_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    status, _, err = run(capsys, "--stack-dir", str(tmp_path))

    assert (status, err) == (1, "error: terraform not found on PATH: pass --endpoint and --api-key instead\n")


def test_missing_stack_dir_is_clear_error(capsys, tmp_path):
    missing = str(tmp_path / "absent")

    status, _, err = run(capsys, "--stack-dir", missing)

    assert (status, err) == (
        1, f"error: stack directory {missing} not found: deploy the stack, or pass --endpoint and --api-key\n"
    )


@pytest.mark.terraform
def test_reads_outputs_with_real_terraform(tmp_path):
    assert shutil.which("terraform"), "terraform must be on PATH"
    state = {
        "version": 4, "terraform_version": "1.10.0", "serial": 1, "lineage": "test", "resources": [],
        "outputs": {"key_endpoint_url": {"value": "https://a1.execute-api.eu-west-1.amazonaws.com/v1/keys",
                                         "type": "string"}},
    }
    (tmp_path / "terraform.tfstate").write_text(json.dumps(state))

    assert request_key.terraform_outputs(str(tmp_path)) == {
        "key_endpoint_url": "https://a1.execute-api.eu-west-1.amazonaws.com/v1/keys"
    }


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [("https://a1b2c3.execute-api.eu-west-2.amazonaws.com/v1/keys", "eu-west-2"),
     ("https://a1b2c3.execute-api.cn-north-1.amazonaws.com.cn/v1/keys", "cn-north-1"),
     ("https://keys.example.com/v1/keys", None),
     ("http://127.0.0.1:4566/restapis/abc/v1/_user_request_/keys", None)],
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
    [({"AWS_REGION": "eu-west-2"}, "eu-west-2"),
     ({"AWS_DEFAULT_REGION": "eu-west-3"}, "eu-west-3"),
     ({"AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "eu-west-3"}, "eu-west-2"),
     ({}, "ap-southeast-2")],
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

    status, _, _ = run(capsys, "--local", "--port", str(api.port), "--stack-dir", fake_terraform.stack_dir,
                       "--endpoint", api.url, "--api-key", API_KEY)

    assert status == 0
    assert api.requests[0]["path"] == "/v1/keys" and api.ssm_requests == []


def test_local_without_the_data_plane_outputs_is_clear_error(api, capsys, fake_terraform):
    fake_terraform.configure({"ssm_parameter_name": PARAMETER, "stage_name": "v1"})

    status, _, err = run(capsys, "--local", "--port", str(api.port), "--stack-dir", fake_terraform.stack_dir)

    assert (status, err) == (1, f"error: stack {fake_terraform.stack_dir} has no rest_api_id output: "
                                "deploy it first, or pass --endpoint/--api-key\n")


def test_local_missing_parameter_in_the_emulator_is_clear_error(api, capsys, fake_terraform):
    fake_terraform.configure(LOCAL_OUTPUTS | {"ssm_parameter_name": "/no/such/parameter"})

    status, _, err = run(capsys, "--local", "--port", str(api.port), "--stack-dir", fake_terraform.stack_dir)

    assert status == 1 and api.requests == []
    assert err.startswith("error: cannot read the API key from SSM parameter /no/such/parameter: ")
    assert "ParameterNotFound" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [([], {}, (False, None, request_key.DEFAULT_STACK_DIR)),
     (["--local"], {}, (True, 4566, ".local-aws/stacks/kms-key-generator")),
     (["--local"], {"LOCAL_AWS_PORT": "4599"}, (True, 4599, ".local-aws/stacks/kms-key-generator")),
     (["--local", "--port", "4600"], {"LOCAL_AWS_PORT": "4599"}, (True, 4600, ".local-aws/stacks/kms-key-generator")),
     (["--stack-dir", "elsewhere"], {"KMSKG_LOCAL": "1"}, (True, 4566, "elsewhere")),
     ([], {"KMSKG_LOCAL": "true"}, (True, 4566, ".local-aws/stacks/kms-key-generator")),
     ([], {"KMSKG_LOCAL": "0"}, (False, None, request_key.DEFAULT_STACK_DIR)),
     ([], {"KMSKG_LOCAL": ""}, (False, None, request_key.DEFAULT_STACK_DIR))],
)
def test_local_switch_port_and_stack_dir(argv, environ, expected):
    args = request_key.parse_args([*REQUIRED_ARGS, *argv], environ)

    assert (args.local, args.port, args.stack_dir) == expected


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [(["--port", "4566"], {}, "--port needs --local (or KMSKG_LOCAL=1)"),
     (["--local"], {"LOCAL_AWS_PORT": "http"}, "$LOCAL_AWS_PORT is not a port number: 'http'")],
)
def test_local_port_mistakes_are_usage_errors(capsys, argv, environ, message):
    with pytest.raises(SystemExit) as exit_info:
        request_key.parse_args([*REQUIRED_ARGS, *argv], environ)

    assert exit_info.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(f"error: {message}")


def test_local_with_nothing_deployed_is_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    status, _, err = run(capsys, "--local")

    assert (status, err) == (1, "error: stack directory .local-aws/stacks/kms-key-generator not found: "
                                "run `make deploy-local` first, or pass --stack-dir\n")


def test_local_without_an_emulator_is_clear_error(capsys, fake_terraform):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the probe is

    status, _, err = run(capsys, "--local", "--port", str(port), "--stack-dir", fake_terraform.stack_dir)

    assert (status, err) == (1, f"error: no emulator on http://127.0.0.1:{port}: run `make deploy-local` first, "
                                "or pass --port\n")
