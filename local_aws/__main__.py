"""Command line for the local AWS emulator.

    python -m local_aws serve  [--port 4566]   # foreground, Ctrl-C stops
    python -m local_aws start  [--port 4566]   # background; state in ./.local-aws/
    python -m local_aws status [--port 4566]
    python -m local_aws stop

``start`` records the daemon's pid and port in ``.local-aws/local-aws.pid``
(log: ``.local-aws/local-aws.log``) under the current directory, and ``stop``
only ever signals that recorded process, after checking it is still ours.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from . import HEALTH_PATH, SERVICE_NAME

DEFAULT_PORT = 4566
HOST = "127.0.0.1"
STATE_DIR = Path(".local-aws")
PID_FILE = STATE_DIR / "local-aws.pid"
LOG_FILE = STATE_DIR / "local-aws.log"
START_TIMEOUT = 60.0  # generous: a cold first start (moto imports, .pyc compiles) is slow on busy CI
STOP_TIMEOUT = 10.0
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def _health(port: int, timeout: float = 2.0) -> dict | None:
    """Our emulator's health answer on ``port``, or None if nothing there answers like it."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{HEALTH_PATH}", timeout=timeout) as response:
            answer = json.load(response)
    except (OSError, ValueError):  # refused, timed out, HTTP error, not JSON
        return None
    return answer if isinstance(answer, dict) and answer.get("service") == SERVICE_NAME else None


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def _read_state() -> dict | None:
    try:
        return json.loads(PID_FILE.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def _ours(state: dict) -> bool:
    """Whether the recorded pid is still our emulator, not a stranger that reused the pid."""
    health = _health(state["port"])
    if health is not None:
        return health["pid"] == state["pid"]
    try:  # not answering (starting up or hung): fall back to its command line where /proc exists
        cmdline = Path(f"/proc/{state['pid']}/cmdline").read_bytes()
    except OSError:
        return False
    return b"local_aws" in cmdline


def serve(port: int) -> int:
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and `stop` both end in a clean shutdown
        signal.signal(signum, lambda *_: stopped.set())
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto_server does, for URLs moto builds to itself

    from .server import LocalAws

    try:
        emulator = LocalAws(port).start()
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"local_aws serving on {emulator.endpoint} (pid {os.getpid()})", flush=True)
    stopped.wait()
    emulator.stop()
    print("local_aws stopped", flush=True)
    return 0


def start(port: int) -> int:
    state = _read_state()
    if state is not None and state["port"] != port and _alive(state["pid"]) and _ours(state):
        print(
            f"error: local_aws from this directory already runs on port {state['port']} "
            f"(pid {state['pid']}); stop it first",
            file=sys.stderr,
        )
        return 1
    health = _health(port)
    if health is not None:
        print(f"local_aws already running on http://{HOST}:{port} (pid {health['pid']}); reusing it")
        return 0
    if _port_in_use(port):
        print(f"error: port {port} is in use by something that is not local_aws", file=sys.stderr)
        return 1

    STATE_DIR.mkdir(exist_ok=True)
    with LOG_FILE.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_aws", "serve", "--port", str(port)],
            cwd=PACKAGE_PARENT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this shell; Ctrl-C here doesn't reach it
        )
    PID_FILE.write_text(json.dumps({"pid": process.pid, "port": port}))

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            PID_FILE.unlink(missing_ok=True)
            print(f"error: local_aws exited during startup; see {LOG_FILE.resolve()}", file=sys.stderr)
            return 1
        health = _health(port, timeout=0.5)
        if health is not None and health["pid"] == process.pid:
            print(f"local_aws started on http://{HOST}:{port} (pid {process.pid}); log: {LOG_FILE.resolve()}")
            return 0
        time.sleep(0.1)
    process.kill()
    PID_FILE.unlink(missing_ok=True)
    print(f"error: local_aws did not answer within {START_TIMEOUT:.0f}s; see {LOG_FILE.resolve()}", file=sys.stderr)
    return 1


def stop() -> int:
    state = _read_state()
    if state is None or not _alive(state["pid"]):
        PID_FILE.unlink(missing_ok=True)
        print("local_aws is not running (nothing started from this directory)")
        return 0
    if not _ours(state):
        PID_FILE.unlink(missing_ok=True)
        print(f"pid {state['pid']} no longer looks like local_aws; removed the stale pid file, signalled nothing")
        return 0

    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(state["pid"]):
        os.kill(state["pid"], signal.SIGKILL)
    PID_FILE.unlink(missing_ok=True)
    print(f"local_aws stopped (pid {state['pid']}, port {state['port']})")
    return 0


def status(port: int) -> int:
    state = _read_state()
    if state is not None and _alive(state["pid"]) and _ours(state):
        print(f"local_aws running on http://{HOST}:{state['port']} (pid {state['pid']})")
        return 0
    health = _health(port)
    if health is not None:
        print(f"local_aws running on http://{HOST}:{port} (pid {health['pid']}), not started from this directory")
        return 0
    print("local_aws is not running")
    return 3  # LSB "program is not running"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws", description="Local AWS emulator (moto + gaps).")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("serve", "run in the foreground until Ctrl-C"),
        ("start", "run in the background (reuses an emulator already on the port)"),
        ("status", "say whether the emulator is running"),
    ]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--port", type=int, default=DEFAULT_PORT)
    commands.add_parser("stop", help="stop the emulator started from this directory")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return serve(args.port)
    if args.command == "start":
        return start(args.port)
    if args.command == "status":
        return status(args.port)
    return stop()


if __name__ == "__main__":
    sys.exit(main())
