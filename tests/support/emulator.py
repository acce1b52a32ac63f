"""A private emulator per test module: `python -m local_aws serve` on a free loopback port.

A subprocess (not a thread) gives each module its own moto state and keeps the emulator's work off the
test process; it is stopped when the module ends.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3

from local_aws import HEALTH_PATH
from tests.support.synth import PROJECT_ROOT
from tools.local import DUMMY_CREDENTIALS, LocalTarget

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def emulator(log: Path, timeout: float = 60) -> Iterator[str]:
    """Serve the emulator on a free port; yield its endpoint; stop it afterwards."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_aws", "serve", "--port", str(port)],
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"emulator exited early; see {log}"
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(endpoint + HEALTH_PATH, timeout=1) as answer:
                    if json.load(answer)["pid"] == process.pid:
                        break
            assert time.monotonic() < deadline, f"emulator did not answer within {timeout}s; see {log}"
            time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def client(target: LocalTarget, service: str):
    return boto3.client(
        service,
        endpoint_url=target.endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
