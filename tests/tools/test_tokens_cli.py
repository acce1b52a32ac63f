"""`python -m tools.tokens` against moto (API Gateway and DynamoDB), checked end to end through the authorizer:
a token `issue` prints is one the authorizer allows, and `revoke` makes it denied. Where a flag is left out, the
table, the tenant's key and the region come from the environment or from the stack's outputs, printed by a
`terraform` script on PATH.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.session
import pytest
from moto import mock_aws

from tests.support.lambdas import load_handler
from tools import tokens
from tools.paths import PROJECT_ROOT

authorizer = load_handler("token_authorizer", "token_authorizer_handler")

TABLE = "kms-key-generator-tokens"
REGION = "eu-west-1"
METHOD_ARN = f"arn:aws:execute-api:{REGION}:123456789012:a1b2c3d4e5/prod/POST/keys"
# Loading botocore's service models is most of a client's cost, so every session here shares one botocore
# session (and its loaded models): the tests' own, the authorizer's and each CLI run's.
_BOTOCORE_SESSION = botocore.session.get_session()
_Session = boto3.session.Session
_TEST_SESSION = _Session(botocore_session=_BOTOCORE_SESSION, region_name=REGION)


def cli_session(region_name=None):
    """What the CLI gets for `boto3.session.Session(region_name=...)`: the shared models, and --region checked."""
    assert region_name == REGION
    return _Session(botocore_session=_BOTOCORE_SESSION, region_name=region_name)


@pytest.fixture(autouse=True)
def aws(monkeypatch):
    """Dummy credentials, no region but the one passed with --region, everything in moto, and the tokens table."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("TOKENS_TABLE", TABLE)
    monkeypatch.setattr(authorizer, "_session", lambda: _TEST_SESSION)  # the authorizer has no --region
    monkeypatch.setattr(tokens.boto3.session, "Session", cli_session)
    authorizer._dynamodb.cache_clear()
    with mock_aws():
        _TEST_SESSION.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "token_hash", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "token_hash", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield
    authorizer._dynamodb.cache_clear()


def api_key(tenant="acme", enabled=True, tags=None):
    """A new API key's (id, value), tagged with its tenant as constructs_lib/tenants.py does (tenant=None: no
    `Tenant` tag), plus `tags`."""
    created = _TEST_SESSION.client("apigateway").create_api_key(
        name="tenant-key", enabled=enabled, tags={**({"Tenant": tenant} if tenant else {}), **(tags or {})}
    )
    return created["id"], created["value"]


def cli(capsys, *args):
    """Run the CLI; returns (exit status, stdout, stderr)."""
    status = tokens.main(["--table", TABLE, "--region", REGION, *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def issue(capsys, tenant, key_id):
    status, out, err = cli(capsys, "issue", tenant, "--api-key-id", key_id)
    assert status == 0, err
    return out.strip()


def authorize(token, capsys):
    """The authorizer's answer for the token (its log lines are dropped)."""
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {"Authorization": f"Bearer {token}"}}
    response = authorizer.lambda_handler(event, None)
    capsys.readouterr()
    return response


def effect(response):
    return response["policyDocument"]["Statement"][0]["Effect"]


def stored_items():
    return _TEST_SESSION.client("dynamodb").scan(TableName=TABLE)["Items"]


def test_issued_token_authorizes_until_revoked(capsys):
    key_id, key_value = api_key(tenant="acme")

    status, out, err = cli(capsys, "issue", "acme", "--api-key-id", key_id)

    assert status == 0
    token = out.strip()
    assert out == f"{token}\n"  # the token alone on stdout, so $(...) captures it
    assert len(token) == 43 and "cannot be shown again" in err
    assert token not in err
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert digest in err  # the handle revoke takes
    [item] = stored_items()
    assert {name: value for name, value in item.items() if name != "created"} == {
        "token_hash": {"S": digest},
        "tenant_id": {"S": "acme"},
        "api_key_id": {"S": key_id},
        "api_key_value": {"S": key_value},
        "enabled": {"BOOL": True},
    }
    assert token not in str(item)

    allowed = authorize(token, capsys)
    assert effect(allowed) == "Allow"
    assert (allowed["principalId"], allowed["usageIdentifierKey"]) == ("acme", key_value)
    assert allowed["context"] == {"tenant_id": "acme", "api_key_id": key_id}

    assert cli(capsys, "revoke", "acme") == (0, "revoked 1 token (tenant acme)\n", "")

    denied = authorize(token, capsys)
    assert (effect(denied), denied["principalId"]) == ("Deny", "unknown")
    assert "usageIdentifierKey" not in denied
    assert stored_items() == []


def test_revoke_tenant_revokes_all_its_tokens_and_no_others(capsys):
    key_id, _ = api_key()
    acme = [issue(capsys, "acme", key_id) for _ in range(3)]
    globex = issue(capsys, "globex", api_key("globex")[0])

    assert cli(capsys, "revoke", "acme") == (0, "revoked 3 tokens (tenant acme)\n", "")

    assert [effect(authorize(token, capsys)) for token in acme] == ["Deny"] * 3
    assert effect(authorize(globex, capsys)) == "Allow"


def test_revoke_by_hash_revokes_that_token_only(capsys):
    key_id, _ = api_key()
    first, second = issue(capsys, "acme", key_id), issue(capsys, "acme", key_id)
    digest = hashlib.sha256(first.encode()).hexdigest()

    status, out, _ = cli(capsys, "revoke", digest.upper())  # hex digits in either case

    assert (status, out) == (0, f"revoked 1 token (hash {digest})\n")
    assert effect(authorize(first, capsys)) == "Deny"
    assert effect(authorize(second, capsys)) == "Allow"


@pytest.mark.parametrize("target", ["nobody", "0" * 64], ids=["tenant", "hash"])
def test_revoking_nothing_fails(capsys, target):
    key_id, _ = api_key()
    issue(capsys, "acme", key_id)

    status, out, err = cli(capsys, "revoke", target)

    assert (status, out) == (1, "")
    assert err.startswith("error: no token found for") and "nothing revoked" in err
    assert len(stored_items()) == 1


def test_list_shows_tenants_and_hash_prefixes_never_tokens_or_key_values(capsys):
    keys = {tenant: api_key(tenant) for tenant in ("globex", "acme")}
    issued = {tenant: issue(capsys, tenant, keys[tenant][0]) for tenant in ("globex", "acme")}
    _TEST_SESSION.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"token_hash": {"S": hashlib.sha256(issued["globex"].encode()).hexdigest()}},
        UpdateExpression="SET enabled = :off",
        ExpressionAttributeValues={":off": {"BOOL": False}},
    )

    status, out, err = cli(capsys, "list")

    assert (status, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["TENANT", "HASH", "PREFIX", "CREATED", "ENABLED"]
    assert [row.split()[0] for row in rows] == ["acme", "globex"]
    for row, tenant, enabled in zip(rows, ("acme", "globex"), ("yes", "no"), strict=True):
        digest = hashlib.sha256(issued[tenant].encode()).hexdigest()
        assert row.split()[1] == digest[:12] and row.split()[3] == enabled
        assert digest not in out
    for secret in (*issued.values(), *(value for _, value in keys.values())):
        assert secret not in out

    status, out, _ = cli(capsys, "list", "--full-hash")
    assert status == 0
    assert all(hashlib.sha256(token.encode()).hexdigest() in out for token in issued.values())
    for secret in (*issued.values(), *(value for _, value in keys.values())):
        assert secret not in out


def test_list_of_an_empty_table(capsys):
    assert cli(capsys, "list") == (0, "no tokens\n", "")


@pytest.mark.parametrize(
    ("tenant", "key", "message"),
    [
        ("acme", "nokey12345", "cannot read API key nokey12345"),
        ("acme", "disabled", "is disabled"),
        ("acme", "globex's", "is tenant globex's (tag Tenant), not acme's"),
        ("acme", "untagged", "has no Tenant tag, so it is no tenant's key; use tenant acme's key"),
        ("acme", "rotating", "is owned by rotation (tag RotationSecretArn): rotation deletes it two rotations later"),
        ("acme", "rotating-tagged-acme", "is owned by rotation (tag RotationSecretArn)"),
        ("a" * 64, None, "must be"),
        ("Acme", None, "must be"),
        ("acme_corp", None, "must be"),
    ],
    ids=[
        "unknown-api-key",
        "disabled-api-key",
        "other-tenants-key",
        "key-without-tenant-tag",
        "rotating-service-key",
        "rotating-key-tagged-as-the-tenant",
        "tenant-as-long-as-a-hash",
        "uppercase",
        "underscore",
    ],
)
def test_issue_refusals_store_nothing(capsys, tenant, key, message):
    rotation = {"RotationSecretArn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:kms-key-generator/api-key"}
    keys = {
        "disabled": lambda: api_key(enabled=False),
        "globex's": lambda: api_key("globex"),
        "untagged": lambda: api_key(None),
        # The service's own key as rotation creates it: no Tenant tag, the secret's ARN in RotationSecretArn.
        "rotating": lambda: api_key(None, tags=rotation),
        "rotating-tagged-acme": lambda: api_key("acme", tags=rotation),
    }
    key_id = keys[key]()[0] if key in keys else key or api_key()[0]

    status, out, err = cli(capsys, "issue", tenant, "--api-key-id", key_id)

    assert (status, out) == (1, "")
    assert err.startswith("error: ") and message in err
    assert stored_items() == []


def test_missing_table_is_one_line_error(capsys):
    status = tokens.main(["--table", "no-such-table", "--region", REGION, "list"])
    out, err = capsys.readouterr()

    assert (status, out) == (1, "")
    assert err.startswith("error: cannot scan table no-such-table") and err.count("\n") == 1


def test_runs_as_a_module():
    completed = subprocess.run(
        [sys.executable, "-m", "tools.tokens", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert all(command in completed.stdout for command in ("issue", "revoke", "list"))


# --- What flags leave out: stack outputs, region and endpoint from the environment -----------------------------------


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """A stack directory whose `terraform output -json` prints `outputs` (set by the test), via a fake terraform."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "terraform"
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys
        sys.stdout.write(os.environ["FAKE_TF_STDOUT"])
        """)
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "stack").mkdir()

    def outputs(**values):
        shown = {name: {"sensitive": False, "value": value} for name, value in values.items()}
        monkeypatch.setenv("FAKE_TF_STDOUT", json.dumps(shown))

    outputs()
    outputs.dir = str(tmp_path / "stack")
    return outputs


def test_issue_and_revoke_with_table_key_and_region_from_the_stack_outputs(capsys, stack):
    key_id, key_value = api_key("acme")
    stack(tokens_table_name=TABLE, tenant_api_key_ids={"acme": key_id, "globex": "other"}, region=REGION)

    status = tokens.main(["--stack-dir", stack.dir, "issue", "acme"])  # no --table, --region nor --api-key-id
    out, err = capsys.readouterr()

    assert status == 0, err
    token = out.strip()
    allowed = authorize(token, capsys)
    assert (effect(allowed), allowed["usageIdentifierKey"]) == ("Allow", key_value)
    assert f"(API key {key_id})" in err
    assert tokens.main(["--stack-dir", stack.dir, "revoke", "acme"]) == 0
    assert capsys.readouterr().out == "revoked 1 token (tenant acme)\n"
    assert effect(authorize(token, capsys)) == "Deny"


def test_flags_win_over_the_stack_outputs_which_are_then_not_read(capsys, stack, monkeypatch):
    key_id, _ = api_key("acme")
    monkeypatch.setenv("PATH", "")  # no terraform at all

    status, out, err = cli(capsys, "--stack-dir", stack.dir, "issue", "acme", "--api-key-id", key_id)

    assert status == 0, err
    assert len(out.strip()) == 43


@pytest.mark.parametrize(
    ("outputs", "argv", "message"),
    [
        (
            {"tenant_api_key_ids": {"acme": "k"}},
            ["issue", "acme"],
            'has no tokens_table_name output (deployed with api.api_key_source = "AUTHORIZER"?): pass --table',
        ),
        (
            {"tokens_table_name": TABLE},
            ["issue", "acme"],
            "has no API key for tenant acme in its tenant_api_key_ids output (one per [[tenants]] entry deployed): "
            "pass --api-key-id",
        ),
        (
            {"tokens_table_name": TABLE, "tenant_api_key_ids": {"globex": "k"}},
            ["issue", "acme"],
            "has no API key for tenant acme in its tenant_api_key_ids output (one per [[tenants]] entry deployed): "
            "pass --api-key-id",
        ),
    ],
    ids=["no-table-output", "no-tenant-keys-output", "tenant-not-deployed"],
)
def test_missing_stack_outputs_are_one_line_errors(capsys, stack, outputs, argv, message):
    stack(**outputs, region=REGION)

    status = tokens.main(["--stack-dir", stack.dir, *argv])
    out, err = capsys.readouterr()

    assert (status, out) == (1, "")
    assert err == f"error: stack {stack.dir} {message}\n"
    assert stored_items() == []


def test_without_terraform_or_stack_the_errors_name_the_flags(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = str(tmp_path / "absent")

    assert tokens.main(["--region", REGION, "--stack-dir", str(tmp_path), "list"]) == 1
    assert capsys.readouterr().err == "error: terraform not found on PATH: pass --table and --api-key-id instead\n"
    assert tokens.main(["--region", REGION, "--stack-dir", missing, "list"]) == 1
    assert capsys.readouterr().err == (
        f"error: stack directory {missing} not found: deploy the stack, or pass --table and --api-key-id\n"
    )


@pytest.mark.parametrize(
    ("environment", "argv"),
    [
        ({"AWS_REGION": REGION}, []),
        ({"AWS_DEFAULT_REGION": REGION}, []),
        ({"AWS_REGION": REGION, "AWS_DEFAULT_REGION": "us-east-2"}, []),
        ({"AWS_REGION": "us-east-2"}, ["--region", REGION]),
    ],
    ids=["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION-first", "--region-first"],
)
def test_region_from_flag_then_environment(capsys, monkeypatch, environment, argv):
    """The CLI's session gets REGION (checked by `cli_session`), where the table is."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    key_id, _ = api_key("acme")

    assert tokens.main(["--table", TABLE, *argv, "issue", "acme", "--api-key-id", key_id]) == 0
    assert tokens.main(["--table", TABLE, *argv, "list"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[0] == "acme"


def test_environment_region_wins_over_the_stack_region(capsys, stack, monkeypatch):
    stack(tokens_table_name=TABLE, region="ap-southeast-2")
    monkeypatch.setenv("AWS_REGION", REGION)

    assert tokens.main(["--stack-dir", stack.dir, "list"]) == 0
    assert capsys.readouterr().out == "no tokens\n"


def test_no_region_anywhere_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setattr(
        tokens.boto3.session,
        "Session",
        lambda region_name=None: _Session(botocore_session=botocore.session.Session(), region_name=region_name),
    )

    status = tokens.main(["--table", TABLE, "list"])

    assert (status, capsys.readouterr().err) == (1, "error: no AWS region: pass --region or set $AWS_REGION\n")


def test_calls_go_to_aws_endpoint_url_signed_for_aws_region(capsys, monkeypatch):
    """botocore's `AWS_ENDPOINT_URL` and the CLI's `AWS_REGION`: a stand-in DynamoDB on 127.0.0.1 gets the scan."""
    seen = []

    class DynamoDB(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.headers["X-Amz-Target"], self.headers["Authorization"]))
            data = b'{"Items": [], "Count": 0, "ScannedCount": 0}'
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            """Keep the test output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), DynamoDB)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_REGION", REGION)
    try:
        status = tokens.main(["--table", "elsewhere", "list"])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert (status, capsys.readouterr().out) == (0, "no tokens\n")
    [(target, authorization)] = seen
    assert target == "DynamoDB_20120810.Scan"
    assert f"/{REGION}/dynamodb/aws4_request" in authorization
