"""Command line for the local AWS emulator, and the record that finds a directory's one emulator.

    python -m local_aws serve  [--port 4566]   # foreground, Ctrl-C stops
    python -m local_aws start  [--port 4566]   # background; state in ./.local-aws/
    python -m local_aws status [--port 4566]
    python -m local_aws stop

``start`` records the daemon's pid and port in ``.local-aws/local-aws.pid``
(log: ``.local-aws/local-aws.log``) under the current directory, and ``stop``
only ever signals that recorded process, after checking it is still ours.
A directory has one emulator: ``start`` on another port than the recorded one,
or on a port another directory's emulator (or anything else) holds, is refused;
a record whose process is gone is removed. ``tools.local`` uses ``recorded``,
``launch`` and ``shutdown`` with its working folder as the directory.

``serve`` and ``start`` apply the test-only fault injection in ``LOCAL_AWS_FAULTS``
(``local_aws.faults``); a bad value stops them with an error naming the variable.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

from . import FAULTS_ENV, FAULTS_PATH, HEALTH_PATH, SERVICE_NAME

DEFAULT_PORT = 4566
HOST = "127.0.0.1"
STATE_DIR = Path(".local-aws")
RECORD_NAME = "local-aws.pid"
LOG_NAME = "local-aws.log"
START_TIMEOUT = 60.0  # generous: a cold first start (moto imports, .pyc compiles) is slow on busy CI
STOP_TIMEOUT = 10.0
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


class EmulatorError(RuntimeError):
    """The emulator cannot be started as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Emulator:
    """A running emulator, as its directory recorded it."""

    pid: int
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"


def emulator_health(port: int, timeout: float = 2.0) -> dict | None:
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


def _read_record(state_dir: Path) -> Emulator | None:
    try:
        record = json.loads((state_dir / RECORD_NAME).read_text())
        return Emulator(int(record["pid"]), int(record["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def _ours(emulator: Emulator) -> bool:
    """Whether the recorded pid is still our emulator, not a stranger that reused the pid."""
    health = emulator_health(emulator.port)
    if health is not None:
        return health["pid"] == emulator.pid
    try:  # not answering (starting up or hung): fall back to its command line where /proc exists
        cmdline = Path(f"/proc/{emulator.pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"local_aws" in cmdline


def _origin(pid: int) -> str:
    """Where another emulator runs from (its working directory: a checkout), where /proc tells."""
    try:
        return f", running from {os.readlink(f'/proc/{pid}/cwd')}"
    except OSError:
        return ""


def recorded(state_dir: Path = STATE_DIR) -> Emulator | None:
    """The emulator `state_dir` recorded, if it still runs.

    A stale record (its process gone, or the pid now someone else's) is removed and said so on stderr, so that
    nothing ever acts on it: the emulator keeps its state in memory, so what was deployed there is gone too.
    """
    emulator = _read_record(state_dir)
    if emulator is None or (_alive(emulator.pid) and _ours(emulator)):
        return emulator
    (state_dir / RECORD_NAME).unlink(missing_ok=True)
    print(
        f"local_aws: removed the stale record {state_dir / RECORD_NAME}: pid {emulator.pid} (port {emulator.port}) "
        "no longer runs local_aws",
        file=sys.stderr,
    )
    return None


def launch(port: int, state_dir: Path = STATE_DIR) -> tuple[Emulator, bool]:
    """`state_dir`'s emulator on `port`: the recorded one (False), else one started in the background (True).

    Refused with `EmulatorError`: the recorded one runs on another port (a directory has one emulator), or `port`
    is held by anything else, another directory's emulator included (deploying there would mix both states).
    """
    if os.environ.get(FAULTS_ENV, "").strip():  # checked here too, so a bad value is reported here, not in the log
        from .faults import FaultConfigError, from_environment

        try:
            from_environment(os.environ)
        except FaultConfigError as error:
            raise EmulatorError(str(error)) from None
    running = recorded(state_dir)
    if running is not None:
        if running.port != port:
            raise EmulatorError(
                f"local_aws from this directory already runs on port {running.port} (pid {running.pid}); stop it first"
            )
        return running, False
    health = emulator_health(port)
    if health is not None:
        raise EmulatorError(
            f"port {port} is used by another local_aws (pid {health['pid']}{_origin(health['pid'])}), not the one "
            f"recorded in {state_dir / RECORD_NAME}: pick another port, or stop that one where it was started"
        )
    if _port_in_use(port):
        raise EmulatorError(f"port {port} is in use by something that is not local_aws")

    state_dir.mkdir(parents=True, exist_ok=True)
    record, log_file = state_dir / RECORD_NAME, (state_dir / LOG_NAME).resolve()
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_aws", "serve", "--port", str(port)],
            cwd=PACKAGE_PARENT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this shell; Ctrl-C here doesn't reach it
        )
    record.write_text(json.dumps({"pid": process.pid, "port": port}))

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            record.unlink(missing_ok=True)
            raise EmulatorError(f"local_aws exited during startup; see {log_file}")
        health = emulator_health(port, timeout=0.5)
        if health is not None and health["pid"] == process.pid:
            return Emulator(process.pid, port), True
        time.sleep(0.1)
    process.kill()
    record.unlink(missing_ok=True)
    raise EmulatorError(f"local_aws did not answer within {START_TIMEOUT:.0f}s; see {log_file}")


def shutdown(state_dir: Path = STATE_DIR) -> Emulator | None:
    """Stop the emulator `state_dir` recorded (only that process, checked to be ours); None if none runs."""
    emulator = recorded(state_dir)
    if emulator is None:
        return None
    os.kill(emulator.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(emulator.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(emulator.pid):
        os.kill(emulator.pid, signal.SIGKILL)
    (state_dir / RECORD_NAME).unlink(missing_ok=True)
    return emulator


def serve(port: int) -> int:
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and `stop` both end in a clean shutdown
        signal.signal(signum, lambda *_: stopped.set())
    os.environ.setdefault("MOTO_PORT", str(port))  # as moto_server does, for URLs moto builds to itself

    from .faults import FaultConfigError
    from .server import LocalAws

    try:
        emulator = LocalAws(port).start()
    except (OSError, FaultConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"local_aws serving on {emulator.endpoint} (pid {os.getpid()})", flush=True)
    stopped.wait()
    emulator.stop()
    print("local_aws stopped", flush=True)
    return 0


def start(port: int) -> int:
    try:
        emulator, started = launch(port)
    except EmulatorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if started:
        print(f"local_aws started on {emulator.endpoint} (pid {emulator.pid}); log: {(STATE_DIR / LOG_NAME).resolve()}")
        return 0
    print(f"local_aws already running on {emulator.endpoint} (pid {emulator.pid}); reusing it")
    if os.environ.get(FAULTS_ENV, "").strip():
        print(f"note: {FAULTS_ENV} applies when an emulator starts; PUT it to {FAULTS_PATH} to change this one")
    return 0


def stop() -> int:
    emulator = shutdown()
    if emulator is None:
        print("local_aws is not running (nothing started from this directory)")
    else:
        print(f"local_aws stopped (pid {emulator.pid}, port {emulator.port})")
    return 0


def status(port: int) -> int:
    """0 when this directory's emulator runs; 3 (LSB "not running") otherwise, naming another one on `port`."""
    emulator = recorded()
    if emulator is not None:
        print(f"local_aws running on {emulator.endpoint} (pid {emulator.pid})")
        return 0
    health = emulator_health(port)
    if health is not None:
        print(f"local_aws is not running from this directory; port {port} has another one (pid {health['pid']})")
    else:
        print("local_aws is not running")
    return 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws", description="Local AWS emulator (moto + gaps).")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("serve", "run in the foreground until Ctrl-C"),
        ("start", "run in the background (reuses this directory's emulator if it runs on the port)"),
        ("status", "say whether this directory's emulator is running"),
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
