"""A private emulator for tests and benchmarks: `python -m local_aws serve` on a free loopback port.

A subprocess (not a thread) gives each user its own moto state and keeps the emulator's work off the caller's
process; it never touches the emulator a developer started with `make deploy-local`, and it is stopped on exit.
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

from . import HEALTH_PATH

PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def private_emulator(log: Path, timeout: float = 60) -> Iterator[str]:
    """Serve the emulator on a free port, logging to `log`; yield its endpoint; stop it afterwards."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_aws", "serve", "--port", str(port)],
            cwd=PACKAGE_PARENT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"emulator exited early; see {log}")
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(endpoint + HEALTH_PATH, timeout=1) as answer:
                    if json.load(answer)["pid"] == process.pid:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not answer within {timeout}s; see {log}")
            time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
