"""Fault injection, for tests only: throttle an AWS API action to a rate, or fail its next calls with an error code.

So a test can prove a client survives AWS's throttling and one-off errors without a real account. Configured by
``PUT FAULTS_PATH`` (``GET`` answers it with counters, ``DELETE`` clears it) or, when the emulator starts, by the
``FAULTS_ENV`` variable holding the same JSON::

    {"throttle": {"kms:CreateKey": 2.0},
     "fail": [{"action": "kms:CreateAlias", "code": "LimitExceededException", "times": 1}]}

* An action is ``<boto3 service name>:<operation>``, checked against botocore's models, so a typo is refused
  instead of being a fault that never fires. Only JSON-protocol (KMS, DynamoDB, SSM, Logs, Secrets Manager...)
  and query-protocol (STS, IAM) services: their requests name the operation (``X-Amz-Target``, ``Action=``);
  the service is the SigV4 credential scope's, so an unsigned request is never faulted.
* ``throttle``: calls per second, a token bucket (``limits.TokenBucket``) with a burst of the whole rate (at least
  1), as KMS quotas are per second; 0 throttles every call. Over the rate the service's throttling error is
  answered (HTTP 400, ``ThrottlingException`` in JSON, ``Throttling`` in query, "Rate exceeded").
* ``fail``: the next ``times`` (default 1) calls of the action answer ``code`` (HTTP 500 for internal-error codes,
  503 for ``ServiceUnavailable``, else 400; ``status`` and ``message`` override), then calls pass again. Entries
  for one action are used in order. A throttled call is refused first and uses up no failure.
* A new configuration replaces the old one: buckets start full, counters at 0.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import botocore.exceptions
import botocore.session

from . import FAULTS_ENV
from .apigw import limits

THROTTLE_MESSAGE = "Rate exceeded"
PROTOCOLS = ("json", "query")
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9._]*$")
_FAIL_KEYS = {"action", "code", "times", "status", "message"}


class FaultConfigError(ValueError):
    """A fault configuration the emulator refuses; the message says which part and why."""


@dataclass(frozen=True)
class Operation:
    """An action and how its requests and errors look on the wire."""

    action: str
    signing_name: str
    wire_name: str
    """``X-Amz-Target`` for JSON (``TrentService.CreateKey``), ``Action`` for query (``AssumeRole``)."""
    protocol: str
    json_version: str
    xml_namespace: str


@dataclass(frozen=True)
class Failure:
    action: str
    code: str
    times: int
    status: int
    message: str


@dataclass(frozen=True)
class FaultConfig:
    throttle: dict[str, float] = field(default_factory=dict)
    fail: tuple[Failure, ...] = ()
    operations: dict[str, Operation] = field(default_factory=dict)


def parse(document: Any) -> FaultConfig:
    """A configuration from its JSON text or decoded form; raises ``FaultConfigError`` naming the bad part."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as error:
            raise FaultConfigError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise FaultConfigError('must be a JSON object: {"throttle": {...}, "fail": [...]}')
    if unknown := sorted(set(document) - {"throttle", "fail"}):
        raise FaultConfigError(f"unknown keys {unknown}: only 'throttle' and 'fail'")
    throttle = document.get("throttle") or {}
    if not isinstance(throttle, dict):
        raise FaultConfigError('throttle must be an object: {"<service>:<Operation>": <calls per second>}')
    operations: dict[str, Operation] = {}
    rates: dict[str, float] = {}
    for action, rate in throttle.items():
        where = f"throttle[{action!r}]"
        operations[action] = _operation(action, where)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate < 0:
            raise FaultConfigError(f"{where}: the rate must be a number of calls per second >= 0, got {rate!r}")
        rates[action] = float(rate)
    entries = document.get("fail") or []
    if not isinstance(entries, list):
        raise FaultConfigError('fail must be a list: [{"action": ..., "code": ..., "times": 1}]')
    failures = []
    for index, entry in enumerate(entries):
        where = f"fail[{index}]"
        if not isinstance(entry, dict):
            raise FaultConfigError(f"{where}: must be an object with action, code and optionally times")
        if unknown := sorted(set(entry) - _FAIL_KEYS):
            raise FaultConfigError(f"{where}: unknown keys {unknown}: only {sorted(_FAIL_KEYS)}")
        action = entry.get("action")
        operations[action] = _operation(action, where)
        code = entry.get("code")
        if not isinstance(code, str) or not _CODE.match(code):
            raise FaultConfigError(f"{where}: code must be an AWS error code like 'LimitExceededException'")
        times, status = entry.get("times", 1), entry.get("status", _default_status(code))
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise FaultConfigError(f"{where}: times must be a whole number >= 1, got {times!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultConfigError(f"{where}: status must be an HTTP error status 400-599, got {status!r}")
        message = entry.get("message", f"{code} injected by local_aws")
        if not isinstance(message, str):
            raise FaultConfigError(f"{where}: message must be a string")
        failures.append(Failure(action, code, times, status, message))
    return FaultConfig(rates, tuple(failures), operations)


def from_environment(environ: Mapping[str, str]) -> FaultConfig | None:
    """``FAULTS_ENV``'s configuration, None when unset or blank; an error names the variable."""
    text = environ.get(FAULTS_ENV, "").strip()
    if not text:
        return None
    try:
        return parse(text)
    except FaultConfigError as error:
        raise FaultConfigError(f"{FAULTS_ENV}: {error}") from None


@functools.cache
def _botocore() -> botocore.session.Session:
    return botocore.session.get_session()


def _operation(action: Any, where: str) -> Operation:
    service, _, name = action.partition(":") if isinstance(action, str) else ("", "", "")
    if not service or not name:
        raise FaultConfigError(f"{where}: an action is '<service>:<Operation>' (e.g. 'kms:CreateKey'), got {action!r}")
    try:
        model = _botocore().get_service_model(service)
    except botocore.exceptions.UnknownServiceError:
        raise FaultConfigError(f"{where}: unknown service {service!r} (use boto3's client name)") from None
    if name not in model.operation_names:
        raise FaultConfigError(f"{where}: {service} has no operation {name!r}")
    if model.protocol not in PROTOCOLS:
        raise FaultConfigError(f"{where}: {service} speaks {model.protocol}; faults need a json or query service")
    json_version = model.metadata.get("jsonVersion", "1.0")
    wire_name = f"{model.metadata['targetPrefix']}.{name}" if model.protocol == "json" else name
    xml_namespace = model.metadata.get("xmlNamespace", "")
    return Operation(action, model.signing_name, wire_name, model.protocol, json_version, xml_namespace)


def _default_status(code: str) -> int:
    if code.endswith(("InternalException", "InternalFailure", "InternalError", "InternalServerError")):
        return 500
    if code.startswith("ServiceUnavailable"):
        return 503
    return 400


def _burst(rate: float) -> int:
    return 0 if rate == 0 else max(1, int(rate))


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back as a fresh stream so whoever reads ``wsgi.input`` next (moto) still gets it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _query_action(environ: dict[str, Any]) -> str | None:
    """A query-protocol request's ``Action``: in the query string, or in the form body botocore sends."""
    actions = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not actions and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        actions = parse_qs(read_body(environ).decode("utf-8", "replace")).get("Action")
    return actions[0] if actions else None


class Faults:
    """The emulator's fault configuration and counters; thread-safe, as the server and the Lambdas calling back
    into it are concurrent."""

    def __init__(self, config: FaultConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config
            self._by_wire = {(op.signing_name, op.wire_name): op for op in config.operations.values()}
            self._query_services = {op.signing_name for op in config.operations.values() if op.protocol == "query"}
            self._remaining = [failure.times for failure in config.fail]
            self._throttles = limits.Throttles()
            self._counters = {action: {"passed": 0, "throttled": 0, "failed": 0} for action in config.operations}

    def state(self) -> dict[str, Any]:
        """The configuration, each failure's calls still to fail, and per action the calls passed/throttled/failed."""
        with self._lock:
            failures = [
                {**asdict(failure), "remaining": remaining}
                for failure, remaining in zip(self._config.fail, self._remaining, strict=True)
            ]
            counters = {action: dict(counts) for action, counts in self._counters.items()}
            return {"throttle": dict(self._config.throttle), "fail": failures, "counters": counters}

    def admin(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """``FAULTS_PATH``: status and JSON answer."""
        if method == "PUT":
            try:
                self.configure(parse(body))
            except FaultConfigError as error:
                return 400, {"message": str(error)}
        elif method == "DELETE":
            self.configure(FaultConfig())
        elif method != "GET":
            return 405, {"message": f"{method} is not allowed: GET, PUT or DELETE"}
        return 200, self.state()

    def intercept(self, environ: dict[str, Any]) -> tuple[int, bytes, dict[str, str]] | None:
        """The error to answer instead of the service (status, body, headers), or None to let the call through."""
        if not self._by_wire:  # nothing configured: no parsing, no body read
            return None
        scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None:
            return None
        service = scope["service"]
        wire_name = environ.get("HTTP_X_AMZ_TARGET")
        if wire_name is None and service in self._query_services:
            wire_name = _query_action(environ)
        now = self._clock()
        with self._lock:
            operation = self._by_wire.get((service, wire_name or ""))
            if operation is None:
                return None
            action, counts = operation.action, self._counters[operation.action]
            rate = self._config.throttle.get(action)
            if rate is not None and not self._throttles.admit(action, rate, _burst(rate), now):
                counts["throttled"] += 1
                code = "ThrottlingException" if operation.protocol == "json" else "Throttling"
                return _error(operation, 400, code, THROTTLE_MESSAGE)
            for index, failure in enumerate(self._config.fail):
                if failure.action == action and self._remaining[index] > 0:
                    self._remaining[index] -= 1
                    counts["failed"] += 1
                    return _error(operation, failure.status, failure.code, failure.message)
            counts["passed"] += 1
            return None


def _error(operation: Operation, status: int, code: str, message: str) -> tuple[int, bytes, dict[str, str]]:
    """An error body as the service's protocol sends it, so botocore raises ``ClientError`` with ``code``."""
    request_id = str(uuid.uuid4())
    if operation.protocol == "json":
        body = json.dumps({"__type": code, "message": message})
        content_type = f"application/x-amz-json-{operation.json_version}"
    else:
        namespace = f' xmlns="{escape(operation.xml_namespace)}"' if operation.xml_namespace else ""
        body = (
            f"<ErrorResponse{namespace}><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type>"
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        content_type = "text/xml"
    return status, body.encode(), {"Content-Type": content_type, "x-amzn-RequestId": request_id}
