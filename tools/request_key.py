"""Ask the deployed service for a KMS key: `python -m tools.request_key --account ... --alias ...`.

Replaces the original `api-request-sample-script.sh`. The endpoint and API key come from `--endpoint` and
`--api-key` (or `$KMSKG_API_KEY`, which keeps the key out of the process list); whatever is missing is read
from the service stack's Terraform outputs (`key_endpoint_url`, `ssm_parameter_name`) and the API key from
that SSM SecureString (in the execute-api URL's region, else `$AWS_REGION`/`$AWS_DEFAULT_REGION`, else the
stack's `region` output; botocore's own `$AWS_ENDPOINT_URL` applies). Prints the created key as JSON; on failure
prints one line saying what went wrong and exits 1. The API key is never printed.

Retries, like an AWS SDK's standard mode: every run is one logical request with one `client_token` (fresh from
`secrets.token_urlsafe`, or `--client-token`), sent unchanged on every attempt so the service creates at most
one key (a repeat is answered 201 with the same key and `"Replayed": true`). Throttling (429, except a usage-plan
quota), 5xx and answers that never came (refused, reset, timed out) are retried up to `--max-attempts` times in
all, after `send_with_retries`' backoff; 400, 403 and 409 are final. Retries are reported on stderr.

`--local` (or `KMSKG_LOCAL=1`) targets `make deploy-local` instead: outputs from `.local-aws/stacks/...`, the
emulator's data-plane URL on `--port` (`$LOCAL_AWS_PORT`, 4566), the key from the emulator's SSM, and dummy
credentials throughout, so the caller's AWS profile and keys are never used.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from constructs_lib.api_contract import CLIENT_ERROR_PREFIXES, REQUEST_MODEL_SCHEMA
from local_aws.__main__ import recorded
from tools.local import (
    DEFAULT_PORT,
    DEFAULT_WORKDIR,
    LOCAL_SERVICE_STACK_DIR,
    PORT_ENV_VAR,
    emulator_answers,
    emulator_client,
    emulator_env,
    local_endpoint,
    requested_port,
    user_request_url,
)
from tools.terraform import ToolError

DEFAULT_STACK_DIR = "cdktf.out/stacks/kms-key-generator"
API_KEY_ENV_VAR = "KMSKG_API_KEY"
ENDPOINT_OUTPUT = "key_endpoint_url"
PARAMETER_OUTPUT = "ssm_parameter_name"
REGION_OUTPUT = "region"
LOCAL_ENV_VAR = "KMSKG_LOCAL"
_TRUE = ("1", "true", "yes", "on")
# https://<api id>.execute-api.<region>.amazonaws.com[.cn]/...: the API key parameter lives in that region.
_EXECUTE_API_HOST = re.compile(r"https?://[^/.]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")
_BOX_DRAWING = re.compile(r"[│╷╵]")
_SERVICE_PREFIX = re.compile(rf"^({'|'.join((*CLIENT_ERROR_PREFIXES, 'InternalError'))}): ")
# The contract's rule for client_token (1-64 of [A-Za-z0-9_-]); token_urlsafe(24) gives 32 such characters.
_CLIENT_TOKEN = re.compile(REQUEST_MODEL_SCHEMA["properties"]["client_token"]["pattern"])
CLIENT_TOKEN_BYTES = 24
DEFAULT_MAX_ATTEMPTS = 8
# Backoff constants of the AWS SDKs' standard retry mode (smithy's util-retry: 100 ms, 500 ms when throttled,
# 20 s cap): a throttled caller backs off harder than one that met a transient failure.
TRANSIENT_BASE_DELAY = 0.1
THROTTLING_BASE_DELAY = 0.5
MAX_DELAY = 20.0
# API Gateway's 429 for a usage-plan quota: it resets with its day, week or month, so retrying cannot help.
QUOTA_MESSAGE = "Limit Exceeded"


class CliError(Exception):
    """A failure worth one line on stderr and exit status 1."""


class Unreachable(Exception):
    """An attempt that got no HTTP answer (refused, reset, timed out, name not resolved): worth retrying.

    `send_with_retries` sets `attempts` when it gives up on one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.attempts: list[Attempt] = []


@dataclass(frozen=True)
class Response:
    """One HTTP answer; `retry_after` is the server's `Retry-After` in seconds, None when absent."""

    status: int
    body: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Attempt:
    """One try of a request: its HTTP status (None: no answer) and the seconds slept after it (0.0: the last)."""

    status: int | None
    delay: float = 0.0


def is_retryable(response: Response) -> bool:
    """Whether another attempt may succeed after this answer: throttling (not a quota) or a 5xx. An attempt that
    got no answer at all is retried too.

    Safe because every attempt carries the same client_token: a key an unanswered attempt created is replayed,
    not created twice."""
    if response.status == 429:
        return _message(response.body) != QUOTA_MESSAGE
    return 500 <= response.status <= 599


def backoff_delay(retry: int, status: int | None, retry_after: float | None, rand: Callable[[], float]) -> float:
    """Seconds to wait before retry number `retry` (0 for the first), with full jitter as the SDKs do:
    `rand() * min(MAX_DELAY, base * 2**retry)`, base THROTTLING_BASE_DELAY after a 429 or 503 (the service is
    asking for less), TRANSIENT_BASE_DELAY otherwise; never less than the server's `Retry-After`."""
    base = THROTTLING_BASE_DELAY if status in (429, 503) else TRANSIENT_BASE_DELAY
    return max(rand() * min(MAX_DELAY, base * 2**retry), retry_after or 0.0)


def send_with_retries(
    send: Callable[[], Response],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> tuple[Response, list[Attempt]]:
    """Call `send` until its answer is not `is_retryable` or `max_attempts` calls were made, sleeping
    `backoff_delay` between calls; returns the last answer and every attempt.

    `send` makes one attempt of one logical request (so each call must send the same client_token) and raises
    `Unreachable` when no answer came; the last attempt's `Unreachable` is raised, with `attempts` set.
    `sleep` and `rand` (uniform in [0, 1)) are injectable so tests and benchmarks control time.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    attempts: list[Attempt] = []
    status: int | None
    retry_after: float | None
    while True:
        last = len(attempts) + 1 == max_attempts
        try:
            response = send()
        except Unreachable as failure:
            if last:
                failure.attempts = [*attempts, Attempt(None)]
                raise
            status, retry_after = None, None
        else:
            if last or not is_retryable(response):
                return response, [*attempts, Attempt(response.status)]
            status, retry_after = response.status, response.retry_after
        delay = backoff_delay(len(attempts), status, retry_after, rand)
        attempts.append(Attempt(status, delay))
        sleep(delay)


def _recorded_port() -> int | None:
    """The port of the emulator `make deploy-local` recorded for this checkout, if it still runs."""
    running = recorded(DEFAULT_WORKDIR)
    return running.port if running is not None else None


def new_client_token() -> str:
    """One token per logical request (a run): random, so no two runs are taken for repeats of each other."""
    return secrets.token_urlsafe(CLIENT_TOKEN_BYTES)


def _client_token(value: str) -> str:
    if not _CLIENT_TOKEN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"must be 1-64 letters, digits, '_' or '-', not {value!r}")
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return int(value)


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
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout of each attempt (default: 30 s)")
    parser.add_argument(
        "--client-token",
        type=_client_token,
        help="idempotency token sent on every attempt (1-64 of [A-Za-z0-9_-]); default: a fresh random one. "
        "Reuse a token to get the key its first request created instead of a second key",
    )
    parser.add_argument(
        "--max-attempts",
        type=_positive,
        default=DEFAULT_MAX_ATTEMPTS,
        help=f"attempts in all, retries included (default: {DEFAULT_MAX_ATTEMPTS}; 1: no retries)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help=f"use the local emulator's deployment (`make deploy-local`); also ${LOCAL_ENV_VAR}=1",
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"with --local: the emulator's port (default: ${PORT_ENV_VAR}, else this checkout's recorded "
        f"emulator, else {DEFAULT_PORT})",
    )
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    args.local = args.local or environ.get(LOCAL_ENV_VAR, "").strip().lower() in _TRUE
    if args.local and args.port is None:
        try:
            requested = requested_port(None, environ)
        except ToolError as error:
            parser.error(str(error))
        args.port = requested.port if requested else _recorded_port() or DEFAULT_PORT
    elif args.port is not None and not args.local:
        parser.error(f"--port needs --local (or {LOCAL_ENV_VAR}=1)")
    args.stack_dir = args.stack_dir or (LOCAL_SERVICE_STACK_DIR if args.local else DEFAULT_STACK_DIR)
    args.client_token = args.client_token or new_client_token()
    return args


def build_payload(args: argparse.Namespace) -> dict[str, str]:
    """The API's request body; `key_spec` only when given, so the service applies its default."""
    payload = {
        "account": args.account,
        "region": args.region,
        "key_usage": args.key_usage,
        "key_alias": args.alias,
        "key_description": args.description,
        "client_token": args.client_token,
    }
    if args.key_spec:
        payload["key_spec"] = args.key_spec
    return payload


def terraform_outputs(
    stack_dir: str, env: Mapping[str, str] | None = None, hint: str = "pass --endpoint and --api-key"
) -> dict[str, object]:
    """The stack's output values, by name, from `terraform output -json` (run with `env` when given); `hint` says
    which flags would have made them unnecessary."""
    if not os.path.isdir(stack_dir):
        raise CliError(f"stack directory {stack_dir} not found: deploy the stack, or {hint}")
    try:
        completed = subprocess.run(
            ["terraform", f"-chdir={stack_dir}", "output", "-json", "-no-color"],
            capture_output=True,
            text=True,
            check=False,
            env=None if env is None else dict(env),
        )
    except FileNotFoundError:
        raise CliError(f"terraform not found on PATH: {hint} instead") from None
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


def post(endpoint: str, api_key: str, payload: dict[str, str], timeout: float) -> Response:
    """POST the payload once; returns the answer whatever its status, raises Unreachable when none came."""
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
            return Response(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        body = error.read().decode("utf-8", "replace")
        return Response(error.code, body, _retry_after(error.headers.get("Retry-After")))
    except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors
        raise Unreachable(str(getattr(error, "reason", error)) or type(error).__name__) from None


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (the form the service sends); an HTTP date or anything else is ignored."""
    value = (value or "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


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
    if status == 429 and message == QUOTA_MESSAGE:
        return f"quota of this API key's usage plan used up for its period (day, week or month): {message}"
    if status == 429:
        return f"throttled: too many requests for this API key, the stage or KMS: {message}"
    if 500 <= status <= 599:
        return f"server error (HTTP {status}): {message}"
    return f"unexpected HTTP {status}: {message}"


def describe_retries(attempts: list[Attempt]) -> str:
    """Why the attempts before the last were retried, in order of first occurrence: `2 throttled, 1 HTTP 502`."""
    labels: dict[int | None, str] = {None: "unreachable", 429: "throttled", 503: "unavailable"}
    counts = Counter(labels.get(attempt.status, f"HTTP {attempt.status}") for attempt in attempts[:-1])
    return ", ".join(f"{count} {label}" for label, count in counts.items())


def _after(attempts: list[Attempt], gave_up: bool, client_token: str) -> str:
    """What a failure line adds: the retries before a final answer, or on giving up the token to rerun with."""
    count = f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}"
    if gave_up:
        return (
            f" (gave up after {count}; rerun with --client-token {client_token} to get the key an unanswered "
            "attempt may have created, not a second one)"
        )
    return f" (after {count}: {describe_retries(attempts)})" if len(attempts) > 1 else ""


def request_key(
    args: argparse.Namespace, sleep: Callable[[float], None], rand: Callable[[], float]
) -> tuple[object, list[Attempt]]:
    """Send the request, retried; returns the service's JSON answer and the attempts, or raises CliError."""
    endpoint, api_key = resolve_target(args, os.environ)
    payload = build_payload(args)
    try:
        response, attempts = send_with_retries(
            lambda: post(endpoint, api_key, payload, args.timeout),
            max_attempts=args.max_attempts,
            sleep=sleep,
            rand=rand,
        )
    except Unreachable as error:
        raise CliError(f"cannot reach {endpoint}: {error}{_after(error.attempts, True, args.client_token)}") from None
    if not 200 <= response.status <= 299:
        gave_up = is_retryable(response)
        raise CliError(describe_failure(response.status, response.body) + _after(attempts, gave_up, args.client_token))
    try:
        return json.loads(response.body), attempts
    except json.JSONDecodeError:
        raise CliError(
            f"the service answered HTTP {response.status} with a body that is not JSON: {_one_line(response.body)}"
        ) from None


def main(
    argv: list[str] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> int:
    """The CLI; `sleep` and `rand` are the backoff's, injectable so tests need not wait."""
    args = parse_args(argv)
    try:
        result, attempts = request_key(args, sleep, rand)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if len(attempts) > 1:
        print(f"created after {len(attempts)} attempts ({describe_retries(attempts)})", file=sys.stderr)
    if isinstance(result, dict) and result.get("Replayed") is True:
        print(
            f"replayed: an earlier request with client token {args.client_token} created this key; no new key",
            file=sys.stderr,
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
