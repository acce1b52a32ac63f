"""`python -m tools.bench --only dataplane`: the locally deployed API under load, measured from the client side.

The default synth (`cdktf.out/`) is applied unchanged to a private emulator; then, as an operator would for a load
test, the usage plan's throttle and quota and the stage's method-settings throttle are raised through the API
(a plan raised for the run), so the latency run measures the data plane, not its limits. Three measurements:

1. latency: closed-loop clients creating keys; percentiles seen by the client, and the data plane's own share of
   each request ((responseLatency - integrationLatency) / responseLatency, from the stage's access-log line);
2. throttle accuracy: a new key in a plan of rate R, burst B, driven open-loop at 3R for 10 s; accepted requests
   must be R*10 + B within 10 %. Their bodies fail validation, which comes after the usage-plan checks, so they
   count without running a Lambda and the run is about the bucket, not the machine;
3. nothing lost: every 201's key is Enabled with exactly its alias, and no key the service tagged lacks an alias.

`python -m tools.bench_dataplane [requests per client]` prints the section without touching `bench/results.md`.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws.private import private_emulator
from tools.local import LocalTarget, emulator_client
from tools.paths import SYNTH_DIR

REGION = "us-east-1"
RAISED_RATE, RAISED_BURST, RAISED_QUOTA = 10_000, 10_000, 1_000_000
SHARE_TARGET = 0.20  # the data plane's share of a request's server-side latency (median)
THROTTLE_RATE, THROTTLE_BURST, THROTTLE_SECONDS, OVERDRIVE = 4.0, 8, 10.0, 3
THROTTLE_TOLERANCE = 0.10


# --- the emulator and the deployment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    outputs: dict[str, Any]
    api_key: str

    def client(self, service: str) -> Any:
        return emulator_client(self.endpoint, service, REGION)

    @property
    def url(self) -> str:
        api, stage = self.outputs["rest_api_id"], self.outputs["stage_name"]
        return f"{self.endpoint}/restapis/{api}/{stage}/_user_request_/keys"


def deploy(endpoint: str, workdir: Path) -> Deployment:
    """Apply every synthesized stack; the API key is read as a client reads it, from the SSM SecureString."""
    target = LocalTarget(endpoint, SYNTH_DIR, workdir)
    stacks = target.deploy_all()
    outputs: dict[str, Any] = {}
    for stack in stacks:
        outputs |= {name: output["value"] for name, output in target.outputs(stack).items()}
    ssm = Deployment(endpoint, outputs, "").client("ssm")
    key = ssm.get_parameter(Name=outputs["ssm_parameter_name"], WithDecryption=True)["Parameter"]["Value"]
    return Deployment(endpoint, outputs, key)


def raise_limits(deployment: Deployment) -> None:
    """The plan raised for the run: usage-plan throttle and quota, and the stage's `*/*` throttle."""
    apigw = deployment.client("apigateway")
    apigw.update_usage_plan(
        usagePlanId=deployment.outputs["usage_plan_id"],
        patchOperations=[
            {"op": "replace", "path": "/throttle/rateLimit", "value": str(RAISED_RATE)},
            {"op": "replace", "path": "/throttle/burstLimit", "value": str(RAISED_BURST)},
            {"op": "replace", "path": "/quota/limit", "value": str(RAISED_QUOTA)},
        ],
    )
    apigw.update_stage(
        restApiId=deployment.outputs["rest_api_id"],
        stageName=deployment.outputs["stage_name"],
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(RAISED_RATE)},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(RAISED_BURST)},
        ],
    )


# --- requests ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    """Client-side: from connecting to the last byte of the answer."""
    request_id: str
    body: str


def send(url: str, body: Any, api_key: str, timeout: float = 120) -> Answer:
    """One POST over a fresh TCP connection, as an independent client makes it."""
    host, _, rest = url.removeprefix("http://").partition("/")
    hostname, _, port = host.partition(":")
    started = time.perf_counter()
    connection = http.client.HTTPConnection(hostname, int(port), timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "x-api-key": api_key}
        connection.request("POST", "/" + rest, json.dumps(body), headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        request_id = response.getheader("x-amzn-RequestId") or ""
    finally:
        connection.close()
    return Answer(response.status, time.perf_counter() - started, request_id, text)


def key_request(alias: str) -> dict[str, str]:
    return {
        "account": "123456789012",
        "region": REGION,
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": alias,
        "key_description": f"bench: {alias}",
    }


def run_clients(
    deployment: Deployment, clients: int, per_client: int, run_id: str
) -> tuple[list[tuple[str, Answer]], float]:
    """Closed loop: each client sends its next request when the last one is answered. ((alias, answer)s, seconds)."""

    def client(index: int) -> list[tuple[str, Answer]]:
        answers = []
        for n in range(per_client):
            alias = f"bench/{run_id}/c{index}-{n}"
            answers.append((alias, send(deployment.url, key_request(alias), deployment.api_key)))
        return answers

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = [a for answers in pool.map(client, range(clients)) for a in answers]
    return results, time.perf_counter() - started


def access_log_lines(deployment: Deployment) -> dict[str, dict[str, str]]:
    """The stage's access-log lines by requestId (the group named by the stage's accessLogSettings)."""
    stage = deployment.client("apigateway").get_stage(
        restApiId=deployment.outputs["rest_api_id"], stageName=deployment.outputs["stage_name"]
    )
    group = stage["accessLogSettings"]["destinationArn"].split(":")[6]
    logs = deployment.client("logs")
    lines: dict[str, dict[str, str]] = {}
    kwargs: dict[str, Any] = {"logGroupName": group}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page["events"]:
            line = json.loads(event["message"])
            lines[line["requestId"]] = line
        if not page.get("nextToken"):
            return lines
        kwargs["nextToken"] = page["nextToken"]


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# --- the three measurements --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    clients: int
    per_client: int
    seconds: float
    millis: list[float]
    statuses: Counter[int]
    shares: list[float]
    gateway_millis: list[int]
    outside_millis: list[float]
    """Client end to end minus responseLatency: TCP, the HTTP server and routing, outside the gateway's timers."""
    unmatched: int
    created: dict[str, str]
    """KeyId -> alias name, from the 201s."""

    @property
    def share(self) -> float:
        return statistics.median(self.shares) if self.shares else float("nan")


def measure_latency(deployment: Deployment, clients: int, per_client: int) -> Latency:
    results, seconds = run_clients(deployment, clients, per_client, uuid.uuid4().hex[:8])
    lines = access_log_lines(deployment)
    shares, gateway, outside, unmatched, created = [], [], [], 0, {}
    for alias, answer in results:
        if answer.status == 201:
            created[json.loads(answer.body)["KeyId"]] = f"alias/{alias}"
        line = lines.get(answer.request_id)
        if line is None or not line["responseLatency"].isdigit() or not line["integrationLatency"].isdigit():
            unmatched += 1
            continue
        response, integration = int(line["responseLatency"]), int(line["integrationLatency"])
        gateway.append(response - integration)
        outside.append(answer.seconds * 1000 - response)
        shares.append((response - integration) / response if response else 0.0)
    return Latency(
        clients,
        per_client,
        seconds,
        [answer.seconds * 1000 for _, answer in results],
        Counter(answer.status for _, answer in results),
        shares,
        gateway,
        outside,
        unmatched,
        created,
    )


@dataclass(frozen=True)
class Throttle:
    rate: float
    burst: int
    seconds: float
    sent: int
    statuses: Counter[int]
    late: float
    """The sender's worst lag behind its schedule, in seconds (open loop: it should stay near 0)."""

    @property
    def accepted(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 429)

    @property
    def expected(self) -> float:
        return self.rate * self.seconds + self.burst

    @property
    def deviation(self) -> float:
        return (self.accepted - self.expected) / self.expected


def measure_throttle(deployment: Deployment) -> Throttle:
    """A fresh key in its own plan (R, B), sent 3R requests/s on a fixed schedule that never waits for answers."""
    apigw = deployment.client("apigateway")
    key = apigw.create_api_key(name=f"bench-throttle-{uuid.uuid4().hex[:8]}", enabled=True)
    plan = apigw.create_usage_plan(
        name=f"bench-throttle-{key['id']}",
        apiStages=[{"apiId": deployment.outputs["rest_api_id"], "stage": deployment.outputs["stage_name"]}],
        throttle={"rateLimit": THROTTLE_RATE, "burstLimit": THROTTLE_BURST},
    )
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    refused_body = {"account": "123456789012"}  # fails validation after the usage-plan checks: no Lambda runs
    count = int(THROTTLE_RATE * OVERDRIVE * THROTTLE_SECONDS)
    interval = 1 / (THROTTLE_RATE * OVERDRIVE)
    futures, late = [], 0.0
    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.perf_counter()
        for n in range(count):
            due = start + n * interval
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            late = max(late, time.perf_counter() - due)
            futures.append(pool.submit(send, deployment.url, refused_body, key["value"]))
        statuses = Counter(future.result().status for future in futures)
    return Throttle(THROTTLE_RATE, THROTTLE_BURST, THROTTLE_SECONDS, count, statuses, late)


@dataclass(frozen=True)
class Inventory:
    created: int
    verified: int
    """201 keys that are Enabled and carry exactly their alias."""
    wrong: list[str]
    tagged: int
    tagged_without_alias: int
    server_errors: int


@dataclass(frozen=True)
class KmsKey:
    state: str
    tags: dict[str, str]
    aliases: list[str]
    """The alias names that target the key, as KMS lists them."""


def kms_keys(deployment: Deployment) -> dict[str, KmsKey]:
    """Every key in the emulator's KMS, by KeyId: what both benches read back to find lost or duplicated keys."""
    kms = deployment.client("kms")
    aliases: dict[str, list[str]] = {}
    for page in kms.get_paginator("list_aliases").paginate():
        for alias in page["Aliases"]:
            if alias.get("TargetKeyId"):
                aliases.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    key_ids = [key["KeyId"] for page in kms.get_paginator("list_keys").paginate() for key in page["Keys"]]

    def read(key_id: str) -> KmsKey:
        state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
        return KmsKey(state, tags, aliases.get(key_id, []))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(key_ids, pool.map(read, key_ids), strict=True))


def take_inventory(deployment: Deployment, latency: Latency) -> Inventory:
    """Read KMS back: the 201s' keys, and every key the service tagged (an alias-less one is a lost request)."""
    service = deployment.client("lambda").get_function_configuration(
        FunctionName=deployment.outputs["lambda_function_name"]
    )["Environment"]["Variables"]["SERVICE_NAME"]
    keys = kms_keys(deployment)
    service_keys = [key for key in keys.values() if key.tags.get("CreatedBy") == service]
    wrong = [
        f"{key_id}: {keys[key_id].state}, aliases {keys[key_id].aliases}"
        for key_id, alias in latency.created.items()
        if not (keys[key_id].state == "Enabled" and keys[key_id].aliases == [alias])
    ]
    return Inventory(
        created=len(latency.created),
        verified=len(latency.created) - len(wrong),
        wrong=wrong,
        tagged=len(service_keys),
        tagged_without_alias=sum(1 for key in service_keys if not key.aliases),
        server_errors=sum(n for status, n in latency.statuses.items() if status >= 500),
    )


# --- the section ---------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def machine_line(command: str, load: tuple[float, float, float]) -> str:
    return (
        f"Measured by `{command}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average before the run {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f})."
    )


def markdown(
    latency: Latency,
    throttle: Throttle,
    inventory: Inventory,
    timings: dict[str, float],
    command: str,
    load: tuple[float, float, float],
) -> str:
    total = latency.clients * latency.per_client
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(latency.statuses.items()))
    all_201 = latency.statuses == Counter({201: total})
    throttle_statuses = ", ".join(f"{status}: {n}" for status, n in sorted(throttle.statuses.items()))
    throttle_ok = abs(throttle.deviation) <= THROTTLE_TOLERANCE
    nothing_lost = (
        not inventory.wrong
        and inventory.tagged_without_alias == 0
        and inventory.server_errors == 0
        and inventory.tagged == inventory.created
    )
    rows_ms = " | ".join(f"{percentile(latency.millis, p):.0f} ms" for p in (50, 95, 99))
    lines = [
        "### API data plane on the local emulator (default synth, a plan raised for the run)\n",
        machine_line(command, load) + "\n",
        f"Latency: **{latency.clients} concurrent clients x {latency.per_client} requests** = {total} key requests "
        f"(closed loop, valid bodies, distinct aliases; each runs the key-generator Lambda in a subprocess), "
        f"{latency.seconds:.1f} s, {total / latency.seconds:.1f} requests/s.\n",
        "| end to end (client) | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|",
        f"| all {total} requests | {rows_ms} | {max(latency.millis):.0f} ms |",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| statuses | {statuses} | all 201: {verdict(all_201)} |",
        f"| data plane share, median of (responseLatency - integrationLatency) / responseLatency "
        f"({len(latency.shares)} access-log lines matched, {latency.unmatched} not) | **{latency.share:.1%}** "
        f"| <= {SHARE_TARGET:.0%}: {verdict(latency.share <= SHARE_TARGET)} |",
        f"| data plane time per request (response - integration latency), median / p95 "
        f"| {statistics.median(latency.gateway_millis):.0f} ms / {percentile(latency.gateway_millis, 95):.0f} ms | |",
        f"| outside the gateway's timers (client end to end - responseLatency), median / p95 "
        f"| {statistics.median(latency.outside_millis):.0f} ms / {percentile(latency.outside_millis, 95):.0f} ms | |",
        f"| throttle: plan R={throttle.rate:g}/s B={throttle.burst}, open loop at {OVERDRIVE}R for "
        f"{throttle.seconds:g} s ({throttle.sent} sent, {throttle_statuses}; sender at most "
        f"{throttle.late * 1000:.0f} ms behind schedule) | accepted **{throttle.accepted}**, expected "
        f"R*{throttle.seconds:g}+B = {throttle.expected:g}, deviation {throttle.deviation:+.1%} "
        f"| within +/-{THROTTLE_TOLERANCE:.0%}: {verdict(throttle_ok)} |",
        f"| nothing lost: 201 keys Enabled with exactly their alias | {inventory.verified} of {inventory.created} | "
        f"all |",
        f"| nothing lost: keys tagged `CreatedBy` the service / of them without an alias / 5xx seen "
        f"| {inventory.tagged} / {inventory.tagged_without_alias} / {inventory.server_errors} "
        f"| {inventory.created} / 0 / 0: {verdict(nothing_lost)} |",
        "",
        "Wall time of the section: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()) + ".",
    ]
    if inventory.wrong:
        lines.append("\nKeys not as answered (first 5): " + "; ".join(inventory.wrong[:5]))
    return "\n".join(lines) + "\n"


def timed_step(timings: dict[str, float], name: str, step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        return step()
    finally:
        timings[name] = time.perf_counter() - started


def bench(
    clients: int = 8, requests_per_client: int = 250, command: str = "python -m tools.bench --only dataplane"
) -> str:
    """Deploy, raise the plan, then measure latency, throttle accuracy and completeness; one Markdown section."""
    load = os.getloadavg()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-dataplane-") as scratch:
        workdir = Path(scratch)
        with private_emulator(workdir / "emulator.log") as endpoint:
            deployment = timed_step(timings, "deploy (both stacks)", lambda: deploy(endpoint, workdir / "deploy"))
            raise_limits(deployment)
            latency = timed_step(
                timings, "latency run", lambda: measure_latency(deployment, clients, requests_per_client)
            )
            throttle = timed_step(timings, "throttle run", lambda: measure_throttle(deployment))
            inventory = timed_step(timings, "inventory", lambda: take_inventory(deployment, latency))
    timings = {"total": time.perf_counter() - started, **timings}
    return markdown(latency, throttle, inventory, timings, command, load)


if __name__ == "__main__":
    print(bench(requests_per_client=int(sys.argv[1]) if len(sys.argv) > 1 else 250))
