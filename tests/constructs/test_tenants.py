"""`tenants.TenantKeys`, in a scratch stack."""

from __future__ import annotations

import re

import pytest

from tests.constructs.helpers import resources


def _props(*tenants, plans=None):
    from constructs_lib.tenants import TenantKeysProps

    return TenantKeysProps(key_name_prefix="demo", tenants=tenants, usage_plan_ids=plans or {"default": "plan-1"})


def test_one_key_and_one_plan_key_per_tenant_keyed_by_id(stack, synth):
    from constructs_lib.cdk import TerraformOutput
    from constructs_lib.tenants import Tenant, TenantKeys

    keys = TenantKeys(stack, "tenants", _props(Tenant(id="globex", plan="default"), Tenant(id="acme", plan="default")))
    TerraformOutput(stack, "ids", value=keys.key_ids_by_tenant)
    TerraformOutput(stack, "values", value=keys.key_values_by_tenant, sensitive=True)
    document = synth(stack)
    api_keys = resources(document, "aws_api_gateway_api_key")["tenants_api-keys"]
    assert set(api_keys["for_each"]) == {"acme", "globex"}
    plan_keys = resources(document, "aws_api_gateway_usage_plan_key")["tenants_usage-plan-keys"]
    assert plan_keys["for_each"] == {"acme": "default", "globex": "default"}
    assert document["variable"]["tenant_api_key_values"]["sensitive"] is True
    assert re.fullmatch(
        r"\$\{\{for tenant, key in aws_api_gateway_api_key\.tenants_api-keys_[0-9A-F]{8} : tenant => key\.id\}\}",
        document["output"]["ids"]["value"],
    )
    assert document["output"]["values"]["value"].endswith(" : tenant => key.value}}")


def test_rejects_duplicate_tenants_and_unknown_plans(stack):
    from constructs_lib.tenants import Tenant, TenantKeys

    with pytest.raises(ValueError) as raised:
        TenantKeys(stack, "tenants", _props(Tenant(id="acme", plan="default"), Tenant(id="acme", plan="gold")))
    assert str(raised.value) == (
        "TenantKeys.tenants[1].id: is a duplicate (ids key the for_each instances), got 'acme'\n"
        "TenantKeys.tenants[1].plan: must be a key of usage_plan_ids (default), got 'gold'"
    )
