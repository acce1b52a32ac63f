"""Changing the mapping template and re-applying creates a new deployment, and the stage serves it."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CHANGED_TEMPLATE_MARKER
from tests.support.emulator import client, emulator
from tests.support.synth import SERVICE_STACK
from tools.local import LocalTarget, synthesized_stacks

pytestmark = pytest.mark.e2e


def _api_state(target: LocalTarget, outputs: dict) -> tuple[str, str, list[str]]:
    apigw = client(target, "apigateway")
    api_id = outputs["rest_api_id"]["value"]
    stage = apigw.get_stage(restApiId=api_id, stageName=outputs["stage_name"]["value"])
    keys = next(r for r in apigw.get_resources(restApiId=api_id)["items"] if r.get("pathPart") == "keys")
    template = apigw.get_integration(restApiId=api_id, resourceId=keys["id"], httpMethod="POST")["requestTemplates"]
    deployments = sorted(d["id"] for d in apigw.get_deployments(restApiId=api_id)["items"])
    return stage["deploymentId"], template["application/json"], deployments


def test_template_change_redeploys_and_the_stage_follows(no_waf_synth, changed_template_synth, tmp_path):
    with emulator(tmp_path / "emulator.log") as endpoint:
        before = LocalTarget(endpoint, no_waf_synth.outdir, tmp_path / "work")
        before.deploy_all()
        service = next(s for s in synthesized_stacks(no_waf_synth.outdir) if s.name == SERVICE_STACK)
        old_deployment, old_template, _ = _api_state(before, before.outputs(service))
        assert not old_template.startswith(CHANGED_TEMPLATE_MARKER)

        after = LocalTarget(endpoint, changed_template_synth.outdir, tmp_path / "work")
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
