"""Three tenants in two plans on the local emulator: each key in its plan, no drift, surgical removal."""

from __future__ import annotations

import json

import pytest

from tests.support.emulator import client, emulator
from tests.support.synth import SERVICE_STACK
from tools.local import LocalTarget, synthesized_stacks
from tools.terraform import terraform

pytestmark = [pytest.mark.e2e, pytest.mark.seconds(91)]

GLOBEX_KEY = "GlobexFixedKey0123456789abcdef"
VARIABLES = (("TF_VAR_tenant_api_key_values", json.dumps({"globex": GLOBEX_KEY})),)


def _planned_changes(target: LocalTarget, stack) -> dict[str, list[str]]:
    """`address -> actions` of every resource a plan would touch (no-ops left out)."""
    workdir = target.init(stack)
    terraform("plan", "-input=false", "-no-color", "-out=tfplan", cwd=workdir, env=target.env())
    shown = json.loads(terraform("show", "-json", "tfplan", cwd=workdir, env=target.env()).stdout)
    return {
        change["address"]: change["change"]["actions"]
        for change in shown.get("resource_changes", [])
        if change["change"]["actions"] not in (["no-op"], ["read"])
    }


def test_tenants_get_keys_in_their_plans_and_removal_touches_only_that_tenant(tenant_synths, tmp_path):
    three, two = tenant_synths["three"], tenant_synths["two"]
    with emulator(tmp_path / "emulator.log") as endpoint:
        target = LocalTarget(endpoint, three.outdir, tmp_path / "work", VARIABLES)
        target.deploy_all()
        service = next(s for s in synthesized_stacks(three.outdir) if s.name == SERVICE_STACK)
        outputs = {name: o["value"] for name, o in target.outputs(service).items()}
        key_ids = outputs["tenant_api_key_ids"]
        assert sorted(key_ids) == ["acme", "globex", "initech"]

        apigw = client(target, "apigateway")
        plan_ids = outputs["usage_plan_ids"]
        members = {
            plan: sorted(k["name"] for k in apigw.get_usage_plan_keys(usagePlanId=plan_id)["items"])
            for plan, plan_id in plan_ids.items()
            if plan != "default"
        }
        assert members == {
            "general": ["kms-key-generator-acme", "kms-key-generator-globex"],
            "unlimited": ["kms-key-generator-initech"],
        }
        assert apigw.get_api_key(apiKey=key_ids["globex"], includeValue=True)["value"] == GLOBEX_KEY
        assert (
            apigw.get_tags(resourceArn=f"arn:aws:apigateway:us-east-1::/apikeys/{key_ids['acme']}")["tags"]["Tenant"]
            == "acme"
        )

        # The second plan is empty: nothing drifts.
        assert _planned_changes(target, service) == {}

        # Removing the middle tenant plans exactly its two instances for destruction, and an in-place update of
        # the key generator, whose package carries the tenants' policies (tenants.json).
        without = LocalTarget(endpoint, two.outdir, tmp_path / "work", VARIABLES)
        changes = _planned_changes(without, service)
        keys = next(n for n in service.config["resource"]["aws_api_gateway_api_key"] if n.startswith("tenants_"))
        attachments = next(
            n for n in service.config["resource"]["aws_api_gateway_usage_plan_key"] if n.startswith("tenants_")
        )
        generator = next(n for n in service.config["resource"]["aws_lambda_function"] if n.startswith("key-generator_"))
        assert changes == {
            f'aws_api_gateway_api_key.{keys}["globex"]': ["delete"],
            f'aws_api_gateway_usage_plan_key.{attachments}["globex"]': ["delete"],
            f"aws_lambda_function.{generator}": ["update"],
        }

        # Fixed key values are validated by Terraform before anything changes. Refusing them needs neither the
        # state's lock nor a refresh, so the plans take neither (each would hold the lock through a full refresh).
        for bad, message in (
            ({"globex": "too-short"}, "Each tenant API key value must be 20-128 letters and digits."),
            ({"globex": GLOBEX_KEY, "acme": GLOBEX_KEY}, "Tenant API key values must be unique."),
        ):
            invalid = LocalTarget(
                endpoint, three.outdir, tmp_path / "work", (("TF_VAR_tenant_api_key_values", json.dumps(bad)),)
            )
            result = terraform(
                "plan",
                "-input=false",
                "-no-color",
                "-lock=false",
                "-refresh=false",
                cwd=invalid.init(service),
                env=invalid.env(),
                check=False,
            )
            assert result.returncode == 1 and message in " ".join(result.stderr.split()), result.stderr
