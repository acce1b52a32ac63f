"""`python -m tools.local`: the request commands printed after a deploy, and `api-key` when nothing is deployed.

The commands themselves are run against a deployment in tests/e2e/test_http.py; here only their shape and the
errors that need no emulator.
"""

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from local_aws.private import free_port
from tools import local, request_key
from tools.local import LocalTarget, Stack

OUTPUTS = {
    "account_id": "123456789012",
    "region": "eu-west-1",
    "rest_api_id": "a1b2c3d4e5",
    "stage_name": "v1",
    "ssm_parameter_name": "/APIGateway/APIKeys/kms-key-generator",
}
SERVICE = Stack("kms-key-generator", "s3", {"output": {"ssm_parameter_name": {}}})
ALIAS = re.compile(r"demo-[0-9a-f]{8}")


def target_in(workdir: Path, port: int = 4599) -> LocalTarget:
    return LocalTarget(f"http://127.0.0.1:{port}", workdir / "cdktf.out", workdir)


def test_curl_line_posts_the_body_with_the_key_read_when_it_runs(tmp_path):
    curl, _ = local.request_commands(target_in(tmp_path), SERVICE, OUTPUTS)

    words = shlex.split(curl)  # the $(...) stays one word, as bash passes it to curl after substitution
    assert words[:2] == ["curl", "-sS"]
    assert words[words.index("-X") + 1: words.index("-X") + 3] == [
        "POST", "http://127.0.0.1:4599/restapis/a1b2c3d4e5/v1/_user_request_/keys"
    ]
    headers = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    api_key_command = f"{shlex.quote(sys.executable)} -m tools.local api-key --port 4599 --workdir {tmp_path}"
    assert headers == ["Content-Type: application/json", f"x-api-key: $({api_key_command})"]
    body = json.loads(words[words.index("-d") + 1])
    assert ALIAS.fullmatch(body.pop("key_alias"))
    assert body == {"account": "123456789012", "region": "eu-west-1", "key_usage": "ENCRYPT_DECRYPT",
                    "key_description": "demo key"}


def test_request_key_line_is_the_client_with_local(tmp_path):
    _, line = local.request_commands(target_in(tmp_path), SERVICE, OUTPUTS)

    python, module, *argv = shlex.split(line)
    assert (python, module) == (sys.executable, "-m")
    assert argv[0] == "tools.request_key"
    args = request_key.parse_args(argv[1:], {})
    assert (args.local, args.port, args.stack_dir) == (True, 4599, str(tmp_path / "stacks" / "kms-key-generator"))
    assert (args.account, args.region, args.description) == ("123456789012", "eu-west-1", "demo key")
    assert ALIAS.fullmatch(args.alias)


def test_default_workdir_needs_no_workdir_or_stack_dir_flags():
    curl, line = local.request_commands(target_in(local.DEFAULT_WORKDIR, 4566), SERVICE, OUTPUTS)

    assert "api-key --port 4566)" in curl and "--workdir" not in curl
    assert "--stack-dir" not in line and "--port 4566" in line


def test_every_print_picks_fresh_aliases(tmp_path):
    lines = [line for _ in range(2) for line in local.request_commands(target_in(tmp_path), SERVICE, OUTPUTS)]

    aliases = [ALIAS.search(line).group(0) for line in lines]
    assert len(set(aliases)) == 4


def test_print_outputs_hides_sensitive_values_and_prints_the_commands(tmp_path, capsys):
    class Deployed(LocalTarget):
        def outputs(self, stack):
            if stack.name != SERVICE.name:
                return {"state_bucket": {"value": "kms-key-generator-state", "sensitive": False}}
            shown = {name: {"value": value, "sensitive": False} for name, value in OUTPUTS.items()}
            return shown | {"api_key_value": {"value": "s3cr3t-key-value", "sensitive": True}}

    deployed = Deployed("http://127.0.0.1:4599", tmp_path / "cdktf.out", tmp_path)
    local._print_outputs(deployed, [Stack("kms-key-generator-remote-state", "local", {}), SERVICE])

    out = capsys.readouterr().out
    assert "  api_key_value = (sensitive)" in out and "s3cr3t-key-value" not in out
    assert '  state_bucket = "kms-key-generator-state"' in out
    curl, request = local.request_commands(deployed, SERVICE, OUTPUTS)  # the same lines but for the aliases
    printed = [ALIAS.sub("demo-*", line) for line in out.splitlines()]
    assert f"  {ALIAS.sub('demo-*', curl)}" in printed and f"  {ALIAS.sub('demo-*', request)}" in printed
    assert "lambda" not in out.lower()


def test_api_key_with_nothing_deployed_fails_with_one_clear_line(tmp_path, capsys):
    status = local.main(["api-key", "--port", str(free_port()), "--workdir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert (status, out, err) == (1, "", f"error: nothing deployed from {tmp_path}: run `make deploy-local` first\n")


def test_api_key_without_an_emulator_fails_with_one_clear_line(tmp_path, capsys):
    copy = tmp_path / "stacks" / "kms-key-generator"
    (copy / ".terraform").mkdir(parents=True)
    config = {"terraform": {"backend": {"s3": {}}}, "output": {"ssm_parameter_name": {"value": "x"}}}
    (copy / "cdk.tf.json").write_text(json.dumps(config))
    port = free_port()

    status = local.main(["api-key", "--port", str(port), "--workdir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err == f"error: no emulator on http://127.0.0.1:{port}: run `make deploy-local` first\n"


def test_emulator_client_ignores_the_callers_profile(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALCALLERKEY000")

    ssm = local.emulator_client("http://127.0.0.1:9", "ssm", "eu-west-1")

    assert ssm.meta.region_name == "eu-west-1" and ssm.meta.endpoint_url == "http://127.0.0.1:9"
    assert ssm._request_signer._credentials.access_key == "testing"


def test_api_key_is_a_command_next_to_deploy_plan_destroy(capsys):
    with pytest.raises(SystemExit):
        local.main(["--help"])

    assert "{deploy,plan,destroy,api-key}" in capsys.readouterr().out
