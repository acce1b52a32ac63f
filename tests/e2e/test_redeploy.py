"""Applying again to a live deployment: a template change redeploys and the stage follows; an apply while another
holds the state lock fails with Terraform's lock error, and the state stays intact.

Both run on one deployment (`deployed`, the default configuration without its WAF): each needs a deployed service,
not a fresh one, and a deployment is ~40 s of the suite. The lock test reads the state as it finds it, so it does
not depend on the template test having passed.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import CHANGED_TEMPLATE_MARKER
from tests.support.emulator import client, emulator
from tests.support.synth import SERVICE_STACK, Synth
from tools.local import LocalTarget, Stack, service_stack, synthesized_stacks
from tools.terraform import terraform_binary

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(131)]


@pytest.fixture(scope="module")
def deployed(no_waf_synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    workdir = tmp_path_factory.mktemp("redeploy")
    with emulator(workdir / "emulator.log") as endpoint:
        target = LocalTarget(endpoint, no_waf_synth.outdir, workdir / "work")
        target.deploy_all()
        yield target


def service_of(synth: Synth) -> Stack:
    stack = service_stack(synthesized_stacks(synth.outdir))
    assert stack is not None and stack.name == SERVICE_STACK, stack
    return stack


# --- a template change ------------------------------------------------------------------------------------------------


def _api_state(target: LocalTarget, outputs: dict) -> tuple[str, str, list[str]]:
    apigw = client(target, "apigateway")
    api_id = outputs["rest_api_id"]["value"]
    stage = apigw.get_stage(restApiId=api_id, stageName=outputs["stage_name"]["value"])
    keys = next(r for r in apigw.get_resources(restApiId=api_id)["items"] if r.get("pathPart") == "keys")
    template = apigw.get_integration(restApiId=api_id, resourceId=keys["id"], httpMethod="POST")["requestTemplates"]
    deployments = sorted(d["id"] for d in apigw.get_deployments(restApiId=api_id)["items"])
    return stage["deploymentId"], template["application/json"], deployments


def test_template_change_redeploys_and_the_stage_follows(deployed, no_waf_synth, changed_template_synth):
    service = service_of(no_waf_synth)
    old_deployment, old_template, _ = _api_state(deployed, deployed.outputs(service))
    assert not old_template.startswith(CHANGED_TEMPLATE_MARKER)

    after = LocalTarget(deployed.endpoint, changed_template_synth.outdir, deployed.workdir)
    plan = after.plan(service)
    assert plan.returncode == 2
    assert "aws_api_gateway_deployment." in plan.stdout and "must be replaced" in plan.stdout
    after.apply(service)

    new_deployment, new_template, deployments = _api_state(after, after.outputs(service))
    assert new_template.startswith(CHANGED_TEMPLATE_MARKER)
    assert new_deployment != old_deployment
    # create_before_destroy: the new deployment served before the old one was deleted.
    assert deployments == [new_deployment]
    assert after.plan(service).returncode == 0


# --- the state lock ---------------------------------------------------------------------------------------------------
# The state afterwards: same lineage, serial advanced, no resource lost, lock released. Not "advanced by one":
# Terraform persists intermediate snapshots during an apply that runs long (a busy machine), each a serial of its own.


def _state(target: LocalTarget, backend: dict) -> dict:
    body = client(target, "s3").get_object(Bucket=backend["bucket"], Key=backend["key"])["Body"].read()
    return json.loads(body)


def _addresses(state: dict) -> set[str]:
    return {f"{r['type']}.{r['name']}" for r in state["resources"] if r["mode"] == "managed"}


def _lock_held(target: LocalTarget, backend: dict) -> bool:
    lock_id = f"{backend['bucket']}/{backend['key']}"
    item = client(target, "dynamodb").get_item(TableName=backend["dynamodb_table"], Key={"LockID": {"S": lock_id}})
    return "Item" in item and "Info" in item["Item"]


def test_concurrent_apply_fails_on_the_lock_and_state_stays_intact(deployed, retagged_synth):
    service = service_of(retagged_synth)
    backend = service.config["terraform"]["backend"]["s3"]
    before = _state(deployed, backend)

    # Two engineers, two working copies of the same retagged change.
    holder = LocalTarget(deployed.endpoint, retagged_synth.outdir, deployed.workdir.parent / "holder")
    rival = LocalTarget(deployed.endpoint, retagged_synth.outdir, deployed.workdir.parent / "rival")
    holder_dir, rival_dir = holder.init(service), rival.init(service)
    applying = subprocess.Popen(
        [terraform_binary(), "apply", "-auto-approve", "-no-color", "-parallelism=1"],
        cwd=holder_dir,
        env=holder.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _lock_held(holder, backend):
            assert applying.poll() is None, "the first apply ended before its lock was seen"
            assert time.monotonic() < deadline, "the first apply never took the lock"
            time.sleep(0.05)
        blocked = subprocess.run(
            [terraform_binary(), "apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
            cwd=rival_dir,
            env=rival.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        still_applying = applying.poll() is None
    finally:
        stdout, stderr = applying.communicate(timeout=300)

    assert still_applying, "the lock holder must still be running when the rival is refused"
    assert blocked.returncode == 1
    assert "Error acquiring the state lock" in blocked.stderr
    assert applying.returncode == 0, stdout + stderr

    after = _state(deployed, backend)
    assert after["lineage"] == before["lineage"]
    assert after["serial"] > before["serial"]
    assert _addresses(after) == _addresses(before)
    assert not _lock_held(deployed, backend)
