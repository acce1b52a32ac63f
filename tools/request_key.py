"""Ask the deployed service for a KMS key: `python -m tools.request_key --account ... --alias ...`.

Replaces the original `api-request-sample-script.sh`. The endpoint and API key come from `--endpoint` and
`--api-key` (or `$KMSKG_API_KEY`, which keeps the key out of the process list); whatever is missing is read
from the service stack's Terraform outputs (`key_endpoint_url`, `ssm_parameter_name`) and the API key from
that SSM SecureString (in the execute-api URL's region, else `$AWS_REGION`/`$AWS_DEFAULT_REGION`, else the
stack's `region` output). Prints the created key as JSON; on failure prints one line saying what went wrong
and exits 1. The API key is never printed.

`--local` (or `KMSKG_LOCAL=1`) targets `make deploy-local` instead: outputs from `.local-aws/stacks/...`, the
emulator's data-plane URL on `--port` (`$LOCAL_AWS_PORT`, 4566), the key from the emulator's SSM, and dummy
credentials throughout, so the caller's AWS profile and keys are never used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from tools.local import (
    DEFAULT_PORT,
    LOCAL_SERVICE_STACK_DIR,
    emulator_answers,
    emulator_client,
    emulator_env,
    local_endpoint,
    user_request_url,
)
from tools.terraform import ToolError

DEFAULT_STACK_DIR = "cdktf.out/stacks/kms-key-generator"
API_KEY_ENV_VAR = "KMSKG_API_KEY"
ENDPOINT_OUTPUT = "key_endpoint_url"
PARAMETER_OUTPUT = "ssm_parameter_name"
REGION_OUTPUT = "region"
LOCAL_ENV_VAR = "KMSKG_LOCAL"
PORT_ENV_VAR = "LOCAL_AWS_PORT"
_TRUE = ("1", "true", "yes", "on")
# https://<api id>.execute-api.<region>.amazonaws.com[.cn]/...: the API key parameter lives in that region.
_EXECUTE_API_HOST = re.compile(r"https?://[^/.]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")
_BOX_DRAWING = re.compile(r"[│╷╵]")
_SERVICE_PREFIX = re.compile(r"^(BadRequest|Forbidden|Conflict|InternalError): ")


class CliError(Exception):
    """A failure worth one line on stderr and exit status 1."""


def parse_args(argv: list[str] | None, environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Flags, with `--local`, `--port` and `--stack-dir` completed from the environment (`environ`)."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.request_key",
        description="Create a KMS key (and its alias) through the kms-key-generator API.",
    )
    parser.add_argument("--account", required=True, help="12-digit account to create the key in")
    parser.add_argument("--region", required=True, help="region to create the key in, e.g. eu-west-1")
    parser.add_argument("--alias", required=True, help="alias for the key, with or without the alias/ prefix")
    parser.add_argument(
        "--key-usage",
        default="ENCRYPT_DECRYPT",
        help="ENCRYPT_DECRYPT (default), SIGN_VERIFY, GENERATE_VERIFY_MAC or KEY_AGREEMENT",
    )
    parser.add_argument("--key-spec", help="key spec; default: the service's default for the key usage")
    parser.add_argument("--description", default="", help="key description (default: empty)")
    parser.add_argument("--endpoint", help=f"URL to POST to; default: the stack's {ENDPOINT_OUTPUT} output")
    parser.add_argument(
        "--api-key",
        help=f"API key; default: ${API_KEY_ENV_VAR}, else the SSM parameter named by the stack's "
        f"{PARAMETER_OUTPUT} output",
    )
    parser.add_argument(
        "--stack-dir",
        help=f"service stack directory (default: {DEFAULT_STACK_DIR}; with --local: {LOCAL_SERVICE_STACK_DIR})",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds (default: 30)")
    parser.add_argument(
        "--local",
        action="store_true",
        help=f"use the local emulator's deployment (`make deploy-local`); also ${LOCAL_ENV_VAR}=1",
    )
    parser.add_argument(
        "--port", type=int, help=f"with --local: the emulator's port (default: ${PORT_ENV_VAR}, else {DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    args.local = args.local or environ.get(LOCAL_ENV_VAR, "").strip().lower() in _TRUE
    if args.local and args.port is None:
        try:
            args.port = int(environ.get(PORT_ENV_VAR) or DEFAULT_PORT)
        except ValueError:
            parser.error(f"${PORT_ENV_VAR} is not a port number: {environ[PORT_ENV_VAR]!r}")
    elif args.port is not None and not args.local:
        parser.error(f"--port needs --local (or {LOCAL_ENV_VAR}=1)")
    args.stack_dir = args.stack_dir or (LOCAL_SERVICE_STACK_DIR if args.local else DEFAULT_STACK_DIR)
    return args


def build_payload(args: argparse.Namespace) -> dict[str, str]:
    """The API's request body; `key_spec` only when given, so the service applies its default."""
    payload = {
        "account": args.account,
        "region": args.region,
        "key_usage": args.key_usage,
        "key_alias": args.alias,
        "key_description": args.description,
    }
    if args.key_spec:
        payload["key_spec"] = args.key_spec
    return payload


def terraform_outputs(stack_dir: str, env: Mapping[str, str] | None = None) -> dict[str, object]:
    """The stack's output values, by name, from `terraform output -json` (run with `env` when given)."""
    if not os.path.isdir(stack_dir):
        raise CliError(f"stack directory {stack_dir} not found: deploy the stack, or pass --endpoint and --api-key")
    try:
        completed = subprocess.run(
            ["terraform", f"-chdir={stack_dir}", "output", "-json", "-no-color"],
            capture_output=True,
            text=True,
            check=False,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError:
        raise CliError("terraform not found on PATH: pass --endpoint and --api-key instead") from None
    if completed.returncode != 0:
        raise CliError(f"terraform output failed in {stack_dir}: {_terraform_error(completed.stderr)}")
    try:
        outputs = json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise CliError(f"terraform output in {stack_dir} is not JSON") from None
    return {name: output["value"] for name, output in outputs.items()}


def _terraform_error(stderr: str) -> str:
    """The error itself, without the warnings and box drawing Terraform prints around it."""
    start = stderr.find("Error")
    return _one_line(_BOX_DRAWING.sub(" ", stderr[start:] if start >= 0 else stderr))


def _output(outputs: dict[str, object], name: str, stack_dir: str) -> str:
    value = outputs.get(name)
    if not isinstance(value, str) or not value:
        raise CliError(f"stack {stack_dir} has no {name} output: deploy it first, or pass --endpoint/--api-key")
    return value


def region_of(endpoint: str) -> str | None:
    """The API's region when the URL is an execute-api one; None lets boto3 use its configured region."""
    match = _EXECUTE_API_HOST.match(endpoint)
    return match.group(1) if match else None


def ssm_region(endpoint: str, outputs: Mapping[str, object], environ: Mapping[str, str]) -> str | None:
    """Where the API key parameter is read: the execute-api URL's region, else the caller's `AWS_REGION` /
    `AWS_DEFAULT_REGION` (a custom domain says nothing), else the stack's own region (so boto3 never stops at
    "You must specify a region")."""
    stack_region = outputs.get(REGION_OUTPUT)
    return (
        region_of(endpoint)
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or (stack_region if isinstance(stack_region, str) and stack_region else None)
    )


def read_api_key(parameter_name: str, region: str | None, emulator: str | None = None) -> str:
    """The API key from its SSM SecureString parameter; from the emulator (dummy credentials) when given."""
    try:
        if emulator:
            ssm = emulator_client(emulator, "ssm", region or "us-east-1")
        else:
            ssm = boto3.client("ssm", region_name=region)
        return ssm.get_parameter(Name=parameter_name, WithDecryption=True)["Parameter"]["Value"]
    except (BotoCoreError, ClientError) as error:
        raise CliError(f"cannot read the API key from SSM parameter {parameter_name}: {error}") from None


def _local_outputs(args: argparse.Namespace) -> dict[str, object]:
    """Outputs of the local deployment; its S3 backend lives in the emulator, so Terraform gets its environment."""
    emulator = local_endpoint(args.port)
    if not os.path.isdir(args.stack_dir):
        hint = "run `make deploy-local` first, or pass --stack-dir"
        raise CliError(f"stack directory {args.stack_dir} not found: {hint}")
    if not emulator_answers(emulator):
        raise CliError(f"no emulator on {emulator}: run `make deploy-local` first, or pass --port")
    try:
        env = emulator_env(emulator)
    except ToolError as error:
        raise CliError(str(error)) from None
    return terraform_outputs(args.stack_dir, env)


def resolve_target(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    """The endpoint and API key: flags and environment first, Terraform outputs and SSM only if needed."""
    endpoint = args.endpoint
    api_key = args.api_key or environ.get(API_KEY_ENV_VAR)
    if endpoint and api_key:
        return endpoint, api_key
    if args.local:
        emulator = local_endpoint(args.port)
        outputs = _local_outputs(args)
        if not endpoint:
            api_id, stage = (_output(outputs, name, args.stack_dir) for name in ("rest_api_id", "stage_name"))
            endpoint = user_request_url(emulator, api_id, stage)
        if not api_key:
            region = outputs.get(REGION_OUTPUT)  # the emulator keeps SSM per region, like AWS
            parameter = _output(outputs, PARAMETER_OUTPUT, args.stack_dir)
            api_key = read_api_key(parameter, region if isinstance(region, str) else None, emulator)
        return endpoint, api_key
    outputs = terraform_outputs(args.stack_dir)
    endpoint = endpoint or _output(outputs, ENDPOINT_OUTPUT, args.stack_dir)
    if not api_key:
        parameter = _output(outputs, PARAMETER_OUTPUT, args.stack_dir)
        api_key = read_api_key(parameter, ssm_region(endpoint, outputs, environ))
    return endpoint, api_key


def post(endpoint: str, api_key: str, payload: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST the payload; returns (HTTP status, body text) whatever the status."""
    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        raise CliError(f"not an http(s) URL: {endpoint}")
    request = urllib.request.Request(
        endpoint,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json", "x-api-key": api_key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CliError(f"cannot reach {endpoint}: {reason}") from None


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _message(body: str) -> str:
    """The service's message without its status prefix (API Gateway wraps it as {"message": ...})."""
    text = body
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        text = parsed["message"]
    return _one_line(_SERVICE_PREFIX.sub("", text.strip())) or "(no message)"


def describe_failure(status: int, body: str) -> str:
    """One line per HTTP status class, saying what the caller can do about it."""
    message = _message(body)
    if status == 400:
        return f"bad request: {message}"
    if status == 403:
        return f"forbidden (wrong API key or account not allowed): {message}"
    if status == 409:
        return f"conflict: {message}"
    if status == 429:
        return f"throttled: request rate or quota of this API key exceeded, retry later: {message}"
    if 500 <= status <= 599:
        return f"server error (HTTP {status}): {message}"
    return f"unexpected HTTP {status}: {message}"


def request_key(args: argparse.Namespace) -> object:
    """Send the request; returns the service's JSON answer or raises CliError saying what failed."""
    endpoint, api_key = resolve_target(args, os.environ)
    status, body = post(endpoint, api_key, build_payload(args), args.timeout)
    if not 200 <= status <= 299:
        raise CliError(describe_failure(status, body))
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise CliError(f"the service answered HTTP {status} with a body that is not JSON: {_one_line(body)}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = request_key(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
