"""`python -m tools.bench --only retries`: clients retrying through KMS's CreateKey quota on the local emulator.

The default synth is applied to a private emulator, the usage plan and stage throttle are raised (so only KMS
limits), and the emulator throttles KMS `CreateKey` to `RATE` per second (fault injection, `local_aws.faults`),
low enough that the quota, not this machine's cores, is the bottleneck. `CLIENTS` clients then each make
`PER_CLIENT` logical requests, one after another, each with its own client token and `tools.request_key`'s retry
policy (full-jitter backoff, `Retry-After` as a floor). Measured: every logical request succeeds, keys created ==
distinct tokens (no duplicate), no key without its alias, no 5xx, the share of attempts refused with 429, and the
wall time against the quota's physical limit, requests / rate.

`python -m tools.bench_retries [clients] [requests per client]` prints the section without touching the results.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from local_aws import FAULTS_PATH
from local_aws.private import private_emulator
from tools.bench_dataplane import Deployment, deploy, key_request, kms_keys, machine_line, raise_limits, verdict
from tools.request_key import Unreachable, new_client_token, post, send_with_retries

RATE = 2.0  # KMS CreateKey calls per second the emulator admits
CLIENTS, PER_CLIENT = 20, 15
MAX_ATTEMPTS = 100  # the bench measures how close retries come to the quota, so no request may give up
WALL_TOLERANCE = 0.20


@dataclass(frozen=True)
class Outcome:
    alias: str
    token: str
    final: int
    attempts: list[int]
    """Every attempt's status (0: no answer)."""
    key_id: str


def logical_request(deployment: Deployment, alias: str) -> Outcome:
    token = new_client_token()
    body = {**key_request(alias), "client_token": token}
    try:
        response, attempts = send_with_retries(
            lambda: post(deployment.url, deployment.api_key, body, timeout=120), max_attempts=MAX_ATTEMPTS
        )
    except Unreachable as failure:  # the last attempt got no answer
        return Outcome(alias, token, 0, [attempt.status or 0 for attempt in failure.attempts], "")
    key_id = json.loads(response.body).get("KeyId", "") if response.status == 201 else ""
    return Outcome(alias, token, response.status, [attempt.status or 0 for attempt in attempts], key_id)


def admin(endpoint: str, method: str, config: dict | None = None) -> dict:
    """The emulator's fault-injection route (test-only)."""
    data = json.dumps(config).encode() if config is not None else None
    request = urllib.request.Request(f"{endpoint}{FAULTS_PATH}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        result: dict = json.loads(answer.read() or b"{}")
        return result


@dataclass(frozen=True)
class Inventory:
    with_token: dict[str, list[str]]
    """client token -> the keys tagged with it."""
    without_alias: list[str]
    """Enabled keys the run created that no alias names."""


def take_inventory(deployment: Deployment, run_id: str) -> Inventory:
    with_token: dict[str, list[str]] = {}
    without_alias = []
    for key_id, key in kms_keys(deployment).items():
        token = key.tags.get("ClientToken")
        if token is None or key.state != "Enabled":
            continue
        with_token.setdefault(token, []).append(key_id)
        if not any(alias.startswith(f"alias/retries/{run_id}/") for alias in key.aliases):
            without_alias.append(key_id)
    return Inventory(with_token, without_alias)


def bench(
    clients: int = CLIENTS, per_client: int = PER_CLIENT, command: str = "python -m tools.bench --only retries"
) -> str:
    load = os.getloadavg()
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="bench-retries-") as scratch:
        workdir = Path(scratch)
        with private_emulator(workdir / "emulator.log") as endpoint:
            deployment = deploy(endpoint, workdir / "deploy")
            raise_limits(deployment)
            admin(endpoint, "PUT", {"throttle": {"kms:CreateKey": RATE}})

            def client(index: int) -> list[Outcome]:
                return [logical_request(deployment, f"retries/{run_id}/c{index}-{n}") for n in range(per_client)]

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                outcomes = [outcome for result in pool.map(client, range(clients)) for outcome in result]
            seconds = time.perf_counter() - started
            counters = admin(endpoint, "GET")["counters"].get("kms:CreateKey", {})
            inventory = take_inventory(deployment, run_id)
    return markdown(outcomes, seconds, counters, inventory, clients, per_client, command, load)


def markdown(
    outcomes: list[Outcome],
    seconds: float,
    counters: dict[str, int],
    inventory: Inventory,
    clients: int,
    per_client: int,
    command: str,
    load: tuple[float, float, float],
) -> str:
    total = clients * per_client
    attempts = Counter(status for outcome in outcomes for status in outcome.attempts)
    all_attempts = sum(attempts.values())
    throttled = attempts[429]
    succeeded = [o for o in outcomes if o.final == 201]
    tokens_ok = [o for o in succeeded if inventory.with_token.get(o.token) == [o.key_id]]
    duplicates = sum(len(keys) - 1 for keys in inventory.with_token.values() if len(keys) > 1)
    server_errors = sum(n for status, n in attempts.items() if status >= 500)
    ideal = total / RATE
    deviation = seconds / ideal - 1
    per_request = sorted(len(o.attempts) for o in outcomes)
    statuses = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(attempts.items()))
    return "\n".join(
        [
            "### Retries through a KMS quota (CreateKey throttled in the emulator)\n",
            machine_line(command, load) + "\n",
            f"**{clients} clients x {per_client} logical requests** = {total}, each with its own client token and "
            f"`tools.request_key`'s retry policy (full-jitter exponential backoff, capped, `Retry-After` as a floor); "
            f"KMS `CreateKey` throttled to {RATE:g}/s by the emulator, usage plan and stage throttle raised.\n",
            "| measure | value | target |",
            "|---|---|---|",
            f"| logical requests that succeeded | {len(succeeded)} of {total} "
            f"| all: {verdict(len(succeeded) == total)} |",
            f"| keys per successful token (exactly its key) / duplicate keys | {len(tokens_ok)} of {len(succeeded)} / "
            f"{duplicates} | all / 0: {verdict(len(tokens_ok) == len(succeeded) and duplicates == 0)} |",
            f"| keys without their alias | {len(inventory.without_alias)} "
            f"| 0: {verdict(not inventory.without_alias)} |",
            f"| 5xx seen by clients | {server_errors} | 0: {verdict(server_errors == 0)} |",
            f"| wall time vs. {total} / {RATE:g} per s = {ideal:.0f} s | **{seconds:.1f} s** ({deviation:+.1%}) "
            f"| within {WALL_TOLERANCE:.0%}: {verdict(abs(deviation) <= WALL_TOLERANCE)} |",
            f"| attempts refused with 429 | **{throttled / all_attempts:.1%}** ({throttled} of {all_attempts}) | |",
            f"| attempts per logical request: median / p95 / max | {per_request[len(per_request) // 2]} / "
            f"{per_request[int(len(per_request) * 0.95) - 1]} / {per_request[-1]} | |",
            f"| emulator's CreateKey counters: passed / throttled | {counters.get('passed', 0)} / "
            f"{counters.get('throttled', 0)} | passed == {total} |",
            f"| every attempt's status | {statuses} | |",
            "",
        ]
    )


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    print(bench(*arguments, command="python -m tools.bench_retries " + " ".join(sys.argv[1:3])))
