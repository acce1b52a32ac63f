"""Run Python Lambda functions for real, without Docker, and let Secrets Manager rotation drive them.

moto 5.2.5 only executes a Lambda function inside Docker (``LambdaFunction._invoke_lambda`` starts a
``docker run``); without Docker every invocation "fails" with ``error running docker``, a text payload and
``X-Amz-Function-Error: Handled``.  Secrets Manager rotation, which invokes the rotation function, inherits
that and has gaps of its own.  The gaps, each confirmed against moto 5.2.5, and what happens here instead:

Lambda
* No Docker, no execution: ``Invoke`` never runs the code.  Here a Zip-packaged function with a
  ``python3.x`` runtime runs in a subprocess of the emulator (``sys.executable``, so none of moto's
  patched botocore or the emulator's state leaks in).  The code zip (moto keeps its bytes in
  ``LambdaFunction.code_bytes``, layers in ``LayerVersion.code_bytes``) is extracted once per content
  SHA-256 into a process-wide temporary directory; layers are on ``sys.path`` as ``/opt/python`` would be.
  The subprocess starts with a clean environment: the function's variables, then the ones Lambda
  reserves (``_HANDLER``, ``AWS_LAMBDA_FUNCTION_NAME``/``_VERSION``/``_MEMORY_SIZE``, ``AWS_REGION``,
  ``AWS_DEFAULT_REGION``, ``LAMBDA_TASK_ROOT``, ...), dummy credentials (``testing``), and
  ``AWS_ENDPOINT_URL`` = the emulator that received the request, so the function's boto3 calls come
  back to the emulator.  ``~/.aws`` and the instance metadata service are switched off.  The handler
  gets a context with ``aws_request_id``, ``function_name``, ``function_version``,
  ``invoked_function_arn``, ``memory_limit_in_mb``, ``log_group_name``, ``log_stream_name`` and
  ``get_remaining_time_in_millis()``; the root logger prints like the Lambda runtime's.
* Results as Lambda returns them: the handler's return value as JSON; an exception as
  ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` with ``X-Amz-Function-Error: Unhandled``
  (moto says ``Handled``); import, handler-name and marshalling failures as the runtime's
  ``Runtime.ImportModuleError`` / ``Runtime.UserCodeSyntaxError`` / ``Runtime.HandlerNotFound`` /
  ``Runtime.MalformedHandlerName`` / ``Runtime.MarshalError``; a process that exits without answering as
  ``Runtime.ExitError``.
* The function's timeout is enforced: after ``Timeout`` seconds of handler time the invocation ends with
  ``Sandbox.Timedout`` ("Task timed out after N.00 seconds").  Importing the handler module (Lambda's
  init phase) gets a further ``INIT_TIMEOUT`` seconds.  The whole process group is killed.
* Logs: stdout and stderr, framed by ``START``/``END``/``REPORT`` lines, go to the ``/aws/lambda/<name>``
  log group; ``LogType=Tail`` returns their last 4 KB in ``X-Amz-Log-Result``.
* ``InvocationType=Event`` runs the function in the background and answers 202 at once (moto ran it
  before answering); ``DryRun`` does not run it.  A payload that is not JSON is
  ``InvalidRequestContentException`` (moto: a 500).
* Every ``python3.x`` runtime runs on the emulator's own interpreter and its installed packages (boto3
  included, as in Lambda).  Other runtimes and Image packages keep moto's behaviour (Docker).

Secrets Manager (``RotateSecret`` when a rotation function is configured or given)
* moto invokes all four steps even when one fails (it ignores the function's result), then points the
  secret's default version at the new, possibly empty, version itself while the labels stay where the
  function left them: after a failed rotation ``GetSecretValue`` without a stage fails ("can't find the
  specified secret value for staging label: AWSCURRENT") although ``AWSCURRENT`` is on the old version.
  Here the steps ``createSecret``, ``setSecret``, ``testSecret``, ``finishSecret`` run in order with
  ``{"SecretId": <ARN>, "ClientRequestToken": <token>, "Step": ...}`` (moto sent the secret's name, real
  Secrets Manager the ARN), and stop at the first failure.  Labels are only moved by the
  function (``finishSecret``), never by the emulator: a failed rotation leaves ``AWSCURRENT`` where it
  was and ``AWSPENDING`` on the new version id (registered, without a value, before ``createSecret``).
* As in AWS, where rotation is asynchronous, ``RotateSecret`` itself still succeeds when the function
  fails; the failure is in the function's log group and the emulator's log (a warning), and the next
  ``RotateSecret`` finds the incomplete rotation: it reattempts it with the same token (AWS retries it on
  its own) and answers AWS's ``InvalidRequestException`` "A previous rotation isn't complete. That
  rotation will be reattempted."  A caller retrying after that (the Terraform provider retries
  ``InvalidRequestException``) starts a fresh rotation once the reattempt has completed.
* moto's in-progress check was inverted: it refused a rotation when ``AWSPENDING`` sat on the
  ``AWSCURRENT`` version (the normal state after a successful rotation whose function moved only
  ``AWSCURRENT``) and allowed one while a previous rotation was incomplete.
* ``RotateSecret`` without ``RotationLambdaARN`` cleared the configured function (and then moved
  ``AWSCURRENT`` itself); here it rotates with the configured function and rules, as AWS does.
* ``RotateImmediately=false`` left the test ``AWSPENDING`` version behind (to AWS, an incomplete
  rotation) and filled it with the secret's *creation* value; here only ``testSecret`` runs, against a pending
  copy of the current value, which is removed afterwards.
* ``RotationEnabled`` stayed false unless ``AutomaticallyAfterDays`` was given, and ``RotationRules``
  only ever showed ``AutomaticallyAfterDays`` (0 for a ``ScheduleExpression``).  Here rotation is
  enabled once a function is configured, and ``DescribeSecret`` returns the rules as given
  (``AutomaticallyAfterDays``, ``Duration``, ``ScheduleExpression``; ``rate(N days)`` also as
  ``AutomaticallyAfterDays``), so ``aws_secretsmanager_secret_rotation`` reads back what it wrote.
  ``LastRotatedDate`` is only set by a rotation that completed.
* ``UpdateSecretVersionStage`` moving ``AWSCURRENT`` (what ``finishSecret`` does) did not change the
  version ``GetSecretValue`` returns without a stage or version: moto keeps a separate default pointer.
  It now follows ``AWSCURRENT``.  Attaching ``AWSCURRENT`` when no version has it yet (the first rotation
  of a secret created without a value; no ``RemoveFromVersionId`` then) was an ``IndexError`` (a 500,
  retried by the SDK, then failing ``finishSecret``); it is attached.
* A secret without any version got no ``AWSPENDING`` version before the function ran (moto only created
  it when the secret had versions), so a rotation function's token checks failed; it is always registered.
* Secrets without any rotation function keep moto's behaviour.

``install(endpoint)`` patches moto process-wide (once) and records the endpoint functions use when an
invocation does not come from a request to one of our servers (requests use the server that got them).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.moto_api._internal import mock_random
from moto.secretsmanager.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
    SecretNotFoundException,
)
from moto.secretsmanager.models import FakeSecret, ReplicaSecret, SecretsManagerBackend

LOG = logging.getLogger(__name__)

INIT_TIMEOUT = 10.0  # seconds Lambda allows the init phase (importing the handler module)
LOG_TAIL_BYTES = 4096  # what LogType=Tail returns
ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
DUMMY_CREDENTIAL = "testing"

_install_lock = threading.Lock()
_code_lock = threading.Lock()
_installed = False
_endpoint: str | None = None
_code_root: str | None = None

_original_invoke = LambdaFunction.invoke
_original_rotate_secret = SecretsManagerBackend.rotate_secret
_original_update_secret_version_stage = SecretsManagerBackend.update_secret_version_stage
_original_to_dict = FakeSecret.to_dict


# --- the subprocess -------------------------------------------------------------------------------------------

# Runs as `python -c _BOOTSTRAP handler result_path timeout request_id function_arn`, cwd = task root, the
# event on stdin.  The answer goes to result_path as {"ok": bool, "payload": str}; stdout/stderr are the logs.
_BOOTSTRAP = r"""
import importlib, json, logging, os, sys, threading, time, traceback

handler_name, result_path, timeout, request_id, function_arn = sys.argv[1:6]
timeout = float(timeout)
answered = threading.Lock()


def finish(ok, payload, exit_code=0):
    if not answered.acquire(blocking=False):  # the handler and the timeout raced; the first one answers
        return
    with open(result_path, "w") as out:
        json.dump({"ok": ok, "payload": payload}, out)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def error(error_type, message, stack=()):
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": list(stack)}
    )


def fail(error_type, message, stack=(), exit_code=1):
    sys.stderr.write(f"[ERROR] {error_type}: {message}\n")
    if stack:
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(stack))
    finish(False, error(error_type, message, stack), exit_code)


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = request_id
        return True


log_handler = logging.StreamHandler(sys.stdout)
log_handler.setFormatter(
    logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S")
)
log_handler.formatter.converter = time.gmtime
log_handler.addFilter(RequestIdFilter())
logging.getLogger().addHandler(log_handler)


class LambdaContext:
    def __init__(self, deadline):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = request_id
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


event = json.loads(sys.stdin.read() or "{}")

module_name, _, function_name = handler_name.rpartition(".")
if not module_name or not function_name:
    message = f"Bad handler '{handler_name}': not enough values to unpack (expected 2, got 1)"
    fail("Runtime.MalformedHandlerName", message)
try:
    module = importlib.import_module(module_name.replace("/", "."))
except SyntaxError as exc:
    fail("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
except Exception as exc:
    fail("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
handler = getattr(module, function_name, None)
if handler is None:
    fail("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")


def timed_out():
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stdout.write(f"{stamp}Z {request_id} Task timed out after {timeout:.2f} seconds\n")
    message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
    finish(False, json.dumps({"errorMessage": message, "errorType": "Sandbox.Timedout"}), 1)


timer = threading.Timer(timeout, timed_out)
timer.daemon = True
context = LambdaContext(time.monotonic() + timeout)
timer.start()
try:
    result = handler(event, context)
except Exception as exc:
    tb = exc.__traceback__.tb_next or exc.__traceback__  # leave this bootstrap's frame out
    fail(type(exc).__name__, str(exc), traceback.format_tb(tb), exit_code=0)
try:
    payload = json.dumps(result)
except (TypeError, ValueError) as exc:
    fail("Runtime.MarshalError", f"Unable to marshal response: {exc}", exit_code=0)
finish(True, payload)
"""


# --- code on disk ---------------------------------------------------------------------------------------------


def _cache_root() -> str:
    global _code_root
    with _code_lock:
        if _code_root is None:
            _code_root = tempfile.mkdtemp(prefix="local-aws-lambda-")
            atexit.register(shutil.rmtree, _code_root, True)
        return _code_root


def _extracted(code: bytes) -> str:
    """The directory holding ``code`` (a zip) unpacked; extracted once per content hash."""
    root = _cache_root()
    target = os.path.join(root, hashlib.sha256(code).hexdigest())
    with _code_lock:
        if not os.path.isdir(target):
            staging = tempfile.mkdtemp(prefix=".extracting-", dir=root)
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(staging)
            os.rename(staging, target)
    return target


def _layer_paths(function: LambdaFunction) -> list[str]:
    """Where each layer's Python packages are, later layers first (they overlay earlier ones in /opt)."""
    from moto.awslambda.utils import get_backend

    backend = get_backend(function.account_id, function.region)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    paths: list[str] = []
    for layer in reversed(function.layers):
        layer_version = backend.layers_versions_by_arn(layer["Arn"])
        if layer_version is None or not getattr(layer_version, "code_bytes", b""):
            continue
        opt = _extracted(layer_version.code_bytes)
        for path in (os.path.join(opt, "python"), os.path.join(opt, "python", "lib", version, "site-packages")):
            if os.path.isdir(path):
                paths.append(path)
    return paths


# --- invocation -----------------------------------------------------------------------------------------------


def _runs_here(function: LambdaFunction) -> bool:
    return (
        getattr(function, "package_type", "Zip") == "Zip"
        and str(function.run_time or "").startswith("python3")
        and bool(getattr(function, "code_bytes", b""))
    )


_thread_endpoint = threading.local()  # for background (Event) invocations, which outlive their request


def _current_endpoint() -> str:
    """The server handling the current request, else the endpoint given to ``install``."""
    background = getattr(_thread_endpoint, "value", None)
    if background:
        return background
    try:
        from flask import has_request_context, request

        if has_request_context():
            host = request.environ.get("SERVER_NAME")
            port = request.environ.get("SERVER_PORT")
            if host and port:
                host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
                return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    except ImportError:  # pragma: no cover - moto's server always has flask
        pass
    if _endpoint is None:
        raise RuntimeError("local_aws.lambda_runner: no emulator endpoint; call install(endpoint=...)")
    return _endpoint


def _environment(function: LambdaFunction, task_root: str, layers: list[str], scratch: str, stream: str) -> dict:
    region = function.region
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": scratch,
        "TMPDIR": scratch,
        "PYTHONPATH": os.pathsep.join([task_root, *layers]),
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave in the log as written
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update({str(k): str(v) for k, v in (function.environment_vars or {}).items()})
    env.update(
        {
            "_HANDLER": str(function.handler),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": os.path.dirname(sys.executable),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
            "AWS_ENDPOINT_URL": _current_endpoint(),
            # nothing from the host's ~/.aws, and no metadata-service probing
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    return env


def _run(function: LambdaFunction, event: str) -> tuple[str, bool, str]:
    """Run the handler on ``event`` (JSON text): (payload, errored, log text)."""
    request_id = str(uuid.uuid4())
    now = time.gmtime()
    stream = f"{time.strftime('%Y/%m/%d', now)}/[{function.version}]{uuid.uuid4().hex}"
    timeout = float(function.timeout or 3)
    try:
        task_root = _extracted(function.code_bytes)
        layers = _layer_paths(function)
    except zipfile.BadZipFile as exc:
        message = f"Unable to import module '{function.handler}': function code is not a zip archive ({exc})"
        payload = json.dumps({"errorMessage": message, "errorType": "Runtime.ImportModuleError"})
        return payload, True, _framed(request_id, function, f"[ERROR] Runtime.ImportModuleError: {message}\n", 0.0)

    with tempfile.TemporaryDirectory(prefix=".invoke-", dir=_cache_root()) as scratch:
        result_path = os.path.join(scratch, "result.json")
        env = _environment(function, task_root, layers, scratch, stream)
        command = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            str(function.handler),
            result_path,
            str(timeout),
            request_id,
            function.function_arn,
        ]
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=task_root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills whatever the handler started too
        )
        killed = False
        try:
            output, _ = process.communicate(event.encode(), timeout=INIT_TIMEOUT + timeout + 1)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        duration = time.monotonic() - started
        logs = output.decode("utf-8", "replace")
        try:
            with open(result_path) as answer:
                result = json.load(answer)
        except (OSError, ValueError):
            result = None

    if result is not None:
        return result["payload"], not result["ok"], _framed(request_id, function, logs, duration)
    if killed:
        message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
        payload = {"errorMessage": message, "errorType": "Sandbox.Timedout"}
        logs += f"{message}\n"
    else:
        status = process.returncode
        how = f"signal: {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {how}"
        payload = {"errorMessage": message, "errorType": "Runtime.ExitError"}
        logs += f"{message}\n"
    return json.dumps(payload), True, _framed(request_id, function, logs, duration)


def _framed(request_id: str, function: LambdaFunction, logs: str, duration: float) -> str:
    if logs and not logs.endswith("\n"):
        logs += "\n"
    millis = duration * 1000
    return (
        f"START RequestId: {request_id} Version: {function.version}\n{logs}END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {millis:.2f} ms\tBilled Duration: {math.ceil(millis)} ms\t"
        f"Memory Size: {function.memory_size} MB\n"
    )


def _save_logs(function: LambdaFunction, logs: str) -> None:
    function.logs_backend.ensure_log_group(function.logs_group_name)
    function.save_logs("\n".join(line for line in logs.splitlines() if line))


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _invoke(self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
    if not _runs_here(self):
        return _original_invoke(self, body, request_headers, response_headers)

    invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    event = body or "{}"
    try:
        json.loads(event)
    except ValueError as exc:
        raise LambdaClientError(
            "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        ) from None
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        endpoint = _current_endpoint()  # the request context is gone once the thread runs

        def run_in_background() -> None:
            payload, errored, logs = _run_with_endpoint(self, event, endpoint)
            _save_logs(self, logs)

        threading.Thread(target=run_in_background, name=f"lambda-{self.function_name}", daemon=True).start()
        return b""

    payload, errored, logs = _run(self, event)
    _save_logs(self, logs)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    tail = logs.encode("utf-8")[-LOG_TAIL_BYTES:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode("ascii")
    response_headers["x-amz-executed-version"] = str(self.version)
    return payload.encode("utf-8")


def _run_with_endpoint(function: LambdaFunction, event: str, endpoint: str) -> tuple[str, bool, str]:
    _thread_endpoint.value = endpoint
    try:
        return _run(function, event)
    finally:
        _thread_endpoint.value = None


# --- Secrets Manager rotation ---------------------------------------------------------------------------------


def _rotation_rules(rules: dict[str, Any] | None) -> dict[str, Any] | None:
    if not rules:
        return None
    normalized: dict[str, Any] = {}
    days = rules.get("AutomaticallyAfterDays")
    schedule = rules.get("ScheduleExpression")
    if days is not None:
        days = int(days)
        if not 1 <= days <= 1000:
            raise InvalidParameterException("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
    elif schedule:
        match = re.fullmatch(r"\s*rate\(\s*(\d+)\s+days?\s*\)\s*", schedule)
        days = int(match.group(1)) if match else None
    if days:
        normalized["AutomaticallyAfterDays"] = days
    if rules.get("Duration"):
        normalized["Duration"] = rules["Duration"]
    if schedule:
        normalized["ScheduleExpression"] = schedule
    return normalized


def _rotation_function(backend: SecretsManagerBackend, arn: str) -> LambdaFunction:
    from moto.awslambda.utils import get_backend

    parts = arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) >= 7 and parts[2] == "lambda" else (None, None)
    try:
        return get_backend(account or backend.account_id, region or backend.region_name).get_function(arn)
    except Exception:
        raise ResourceNotFoundException(f"Resource not found for ARN '{arn}'.") from None


def _incomplete_rotation(secret: FakeSecret) -> str | None:
    """The version of a rotation that has not finished: AWSPENDING on a version that is not AWSCURRENT."""
    for version_id, version in secret.versions.items():
        stages = version["version_stages"]
        if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
            return version_id
    return None


def _run_rotation(secret: FakeSecret, function: LambdaFunction, token: str, steps: tuple[str, ...]) -> bool:
    """Invoke the rotation steps in order; stop at the first that fails.  True when all succeeded."""
    for step in steps:
        event = json.dumps({"SecretId": secret.arn, "ClientRequestToken": token, "Step": step})
        response_headers: dict[str, str] = {}
        payload = function.invoke(event, {}, response_headers)
        if response_headers.get("x-amz-function-error"):
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
            LOG.warning(
                "rotation of %s (version %s) stopped: %s in %s failed: %s",
                secret.arn,
                token,
                step,
                function.function_arn,
                text,
            )
            return False
    return True


def _current_value(secret: FakeSecret) -> dict[str, Any]:
    for version in secret.versions.values():
        if "AWSCURRENT" in version["version_stages"]:
            return {k: version[k] for k in ("secret_string", "secret_binary") if k in version}
    return {}


def _rotate_secret(
    self: SecretsManagerBackend,
    secret_id: str,
    client_request_token: str | None = None,
    rotation_lambda_arn: str | None = None,
    rotation_rules: dict[str, Any] | None = None,
    rotate_immediately: bool = True,
) -> str:
    if not self._is_valid_identifier(secret_id):
        raise SecretNotFoundException()
    secret = self.secrets[secret_id]
    if isinstance(secret, ReplicaSecret) or not (rotation_lambda_arn or secret.rotation_lambda_arn):
        return _original_rotate_secret(
            self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately
        )
    if secret.is_deleted():
        raise InvalidRequestException("You tried to perform the operation on a secret that's currently marked deleted.")
    if rotation_lambda_arn and len(rotation_lambda_arn) > 2048:
        raise InvalidParameterException("RotationLambdaARN must <= 2048 characters long.")
    rules = _rotation_rules(rotation_rules)
    if client_request_token:
        self._client_request_token_validator(client_request_token)
    function = _rotation_function(self, rotation_lambda_arn or secret.rotation_lambda_arn)

    pending = _incomplete_rotation(secret)
    if pending is not None:
        configured = _rotation_function(self, secret.rotation_lambda_arn) if secret.rotation_lambda_arn else function
        if _run_rotation(secret, configured, pending, ROTATION_STEPS):
            secret.last_rotation_date = int(time.time())
        raise InvalidRequestException("A previous rotation isn't complete. That rotation will be reattempted.")

    secret.rotation_lambda_arn = rotation_lambda_arn or secret.rotation_lambda_arn
    if rules is not None:
        secret.local_aws_rotation_rules = rules
        secret.auto_rotate_after_days = rules.get("AutomaticallyAfterDays", 0)
        days = rules.get("AutomaticallyAfterDays")
        secret.next_rotation_date = int(time.time()) + days * 86400 if days else None
    secret.rotation_requested = True
    secret.rotation_enabled = True

    token = client_request_token or str(mock_random.uuid4())
    if token in secret.versions:  # the same request again: that rotation already happened
        return secret.to_short_dict(version_id=token)

    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    version: dict[str, Any] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    if not rotate_immediately:  # testSecret tests the configuration against a pending copy of the current value
        version.update(_current_value(secret))
    secret.versions[token] = version

    if rotate_immediately:
        if _run_rotation(secret, function, token, ROTATION_STEPS):
            secret.last_rotation_date = int(time.time())
    else:
        _run_rotation(secret, function, token, ("testSecret",))
        if "AWSCURRENT" not in secret.versions.get(token, {}).get("version_stages", []):
            secret.versions.pop(token, None)  # "The test creates an AWSPENDING version and then removes it."
    return secret.to_short_dict(version_id=token)


def _update_secret_version_stage(
    self: SecretsManagerBackend,
    secret_id: str,
    version_stage: str,
    remove_from_version_id: str,
    move_to_version_id: str,
) -> tuple[str, str]:
    secret = self.secrets.get(secret_id)
    first_current = (
        secret is not None
        and version_stage == "AWSCURRENT"
        and move_to_version_id
        and not remove_from_version_id
        and not any("AWSCURRENT" in version["version_stages"] for version in secret.versions.values())
    )
    if first_current:  # nothing to take AWSCURRENT from (a secret created without a value): just attach it
        if move_to_version_id not in secret.versions:
            raise InvalidParameterException(f"Not a valid version: {move_to_version_id}")
        secret.versions[move_to_version_id]["version_stages"].append("AWSCURRENT")
        result = (secret.arn, secret.name)
    else:
        result = _original_update_secret_version_stage(
            self, secret_id, version_stage, remove_from_version_id, move_to_version_id
        )
    if version_stage == "AWSCURRENT" and move_to_version_id:
        secret = self.secrets[secret_id]
        getattr(secret, "source", secret).default_version_id = move_to_version_id
    return result


def _to_dict(self: FakeSecret) -> dict[str, Any]:
    dct = _original_to_dict(self)
    rules = getattr(self, "local_aws_rotation_rules", None)
    if self.rotation_requested and rules is not None:
        dct["RotationRules"] = dict(rules)
    return dct


# --- installation ---------------------------------------------------------------------------------------------


def install(endpoint: str | None = None) -> None:
    """Patch moto (once per process) and, when given, set the endpoint functions call back to."""
    global _installed, _endpoint
    with _install_lock:
        if endpoint is not None:
            _endpoint = endpoint.rstrip("/")
        if _installed:
            return
        LambdaFunction.invoke = _invoke
        SecretsManagerBackend.rotate_secret = _rotate_secret
        SecretsManagerBackend.update_secret_version_stage = _update_secret_version_stage
        FakeSecret.to_dict = _to_dict
        _installed = True
