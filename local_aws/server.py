"""Run the emulator (moto's server app, gaps closed) in a background thread of this process.

moto keeps its state in module-level backends, so every emulator in one
process shares the same resources.
"""

import ipaddress
import json
import os
import re
import threading
from http import HTTPStatus
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from . import (
    FAULTS_PATH,
    HEALTH_PATH,
    SERVICE_NAME,
    acm_gaps,
    apigateway_gaps,
    dynamodb_gaps,
    faults,
    kms_gaps,
    lambda_gaps,
    lambda_runner,
    logs_gaps,
    route53_seed,
    s3_gaps,
)
from .apigw import dataplane


class _LocalRoutes:
    """WSGI wrapper for what moto does not serve: ``HEALTH_PATH`` (our name and pid), ``FAULTS_PATH`` (test-only
    fault injection) and API Gateway's data plane (``/restapis/<id>/<stage>/_user_request_/...`` and custom
    domains); everything else is an AWS API call, answered by an injected fault if one applies, else by moto."""

    def __init__(self, app: Any, fault_config: faults.FaultConfig | None = None):
        self.app = app
        self.dataplane = dataplane.DataPlane()
        self.faults = faults.Faults(fault_config)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH:
            health = json.dumps({"service": SERVICE_NAME, "pid": os.getpid()}).encode()
            return _respond(start_response, 200, health, {"Content-Type": "application/json"})
        if path == FAULTS_PATH:
            status, answer = self.faults.admin(environ.get("REQUEST_METHOD", "GET"), faults.read_body(environ))
            headers = {"Content-Type": "application/json", "Allow": "GET, PUT, DELETE"}
            return _respond(start_response, status, json.dumps(answer).encode(), headers)
        user_request = dataplane.USER_REQUEST.match(path)
        if user_request is not None:
            request = dataplane.parse_wsgi(environ, user_request["path"] or "/")
            response = self.dataplane.handle_user_request(user_request["api"], user_request["stage"], request)
            return _respond(start_response, response.status, response.body, response.headers)
        host = (environ.get("HTTP_HOST") or "").rsplit(":", 1)[0].lower()
        if _maybe_custom_domain(host):
            response = self.dataplane.handle_domain_request(host, dataplane.parse_wsgi(environ, path))
            if response is not None:
                return _respond(start_response, response.status, response.body, response.headers)
        fault = self.faults.intercept(environ)
        if fault is not None:
            return _respond(start_response, *fault)
        return self.app(environ, start_response)


def _maybe_custom_domain(host: str) -> bool:
    """Whether a Host could name a custom domain: not an address, not localhost, not an AWS service host."""
    if not host or host == "localhost" or host.endswith(".amazonaws.com") or host.startswith("["):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


class _RequestHandler(MotoRequestHandler):
    """moto's handler, whose request log line also names the AWS operation (JSON protocols' ``X-Amz-Target``) and,
    when an SDK sent the request again, its attempt (``amz-sdk-request: attempt=2; max=25``): a retried create is
    how a non-idempotent call ends up applied twice, so the log must show it. A connection the client dropped is
    logged too (werkzeug's default is silence).

    A response leaves in one write (up to 64 KiB; werkzeug's default writer sends the headers, then the body).
    Given the headers alone, Terraform's Go client can close the connection before it reads the body: a race in the
    client that a busy machine makes likely (aws-sdk-go-v2#2737). The SDK then sends the call again
    (aws-sdk-go-v2#2949), a create too, which then fails on its own first success. A response that arrives whole
    within the 4 KiB the client reads at once is read before that close can matter."""

    wbufsize = 64 * 1024

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        detail = [self.headers.get("X-Amz-Target", "")]
        attempt = _SDK_ATTEMPT.search(self.headers.get("amz-sdk-request", ""))
        if attempt is not None and int(attempt[1]) > 1:
            detail.append(f"SDK retry, attempt {attempt[1]} of invocation {self.headers.get('amz-sdk-invocation-id')}")
        suffix = "; ".join(part for part in detail if part)
        line = self.requestline.translate(self._control_char_table)
        self.log("info", '"%s" %s %s%s', line, code, size, f" [{suffix}]" if suffix else "")

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.log("info", "connection dropped by the client during %r: %r", self.requestline, error)


_SDK_ATTEMPT = re.compile(r"attempt=(\d+)")


def _respond(start_response: Any, status: int, body: bytes, headers: dict[str, str]) -> list[bytes]:
    start_response(f"{status} {HTTPStatus(status).phrase}", [*headers.items(), ("Content-Length", str(len(body)))])
    return [body]


class LocalAws:
    """The emulator on ``host:port``; ``port=None`` lets the OS pick a free one at ``start()``.

    Usable as a context manager::

        with LocalAws() as aws:
            boto3.client("apigateway", endpoint_url=aws.endpoint, ...)
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1"):
        self.host = host
        self._requested_port = port or 0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalAws is not started")
        return self._server.server_port

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "LocalAws":
        """Serve in a background thread, with the faults of ``FAULTS_ENV`` (test-only; ``FaultConfigError`` if bad)."""
        if self._server is not None:
            raise RuntimeError(f"LocalAws already running on {self.endpoint}")
        fault_config = faults.from_environment(os.environ)  # a bad value stops the start before anything changes
        acm_gaps.install()
        apigateway_gaps.install()
        dynamodb_gaps.install()
        kms_gaps.install()
        lambda_gaps.install()
        logs_gaps.install()
        s3_gaps.install()
        route53_seed.seed_hosted_zones()
        app = _LocalRoutes(DomainDispatcherApplication(create_backend_app), fault_config)
        try:
            self._server = make_server(
                self.host, self._requested_port, app, threaded=True, request_handler=_RequestHandler
            )
        except SystemExit:  # werkzeug prints why it cannot bind and exits; a library should raise instead
            raise OSError(f"cannot listen on {self.host}:{self._requested_port}") from None
        lambda_runner.install(endpoint=self.endpoint)  # functions call back here; needs the bound port
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"local-aws-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; a no-op when not running."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> "LocalAws":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
