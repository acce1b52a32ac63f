"""Tenants: one API key per tenant in its plan, keyed by tenant id, values never in the JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from constructs_lib.settings import SettingsError, load_settings
from tests.support.synth import only, ref, resources

TENANTS = "tenants_"


def test_one_key_per_tenant_keyed_by_tenant_id(variant):
    keys = only(variant.service, "aws_api_gateway_api_key", TENANTS)
    assert sorted(keys["for_each"]) == ["acme", "globex", "initech"]
    assert keys["for_each"]["acme"] == {
        "name": "keys-variant-acme",
        "enabled": True,
        "fixed_key": False,
        "tags": {"Tenant": "acme", "UsagePlan": "general"},
    }
    assert keys["for_each"]["initech"]["enabled"] is False
    assert keys["for_each"]["initech"]["tags"] == {"Team": "platform", "Tenant": "initech", "UsagePlan": "unlimited"}
    assert keys["name"] == "${each.value.name}" and keys["tags"] == "${each.value.tags}"


def test_each_tenant_key_joins_its_plan(variant):
    stack = variant.service
    attachments = only(stack, "aws_api_gateway_usage_plan_key", TENANTS)
    assert attachments["for_each"] == {"acme": "general", "globex": "general", "initech": "unlimited"}
    assert attachments["key_id"] == "${" + ref(stack, "aws_api_gateway_api_key", "id", TENANTS)[2:-4] + "[each.key].id}"
    for plan in ("general", "unlimited"):
        plan_ref = ref(stack, "aws_api_gateway_usage_plan", "id", f"usage-plan-{plan}")[2:-1]
        assert f'"{plan}" = {plan_ref}' in attachments["usage_plan_id"]
    assert attachments["usage_plan_id"].endswith("[each.value]}")


def test_fixed_key_values_come_from_a_sensitive_variable(variant):
    variable = variant.service["variable"]["tenant_api_key_values"]
    assert variable["sensitive"] is True and variable["type"] == "map(string)" and variable["default"] == {}
    conditions = [v["condition"] for v in variable["validation"]]
    assert any('regex(\\"^[A-Za-z0-9]{20,128}$\\"' in c or 'regex("^[A-Za-z0-9]{20,128}$"' in c for c in conditions)
    assert any("distinct" in c for c in conditions)
    keys = only(variant.service, "aws_api_gateway_api_key", TENANTS)
    assert keys["value"] == "${each.value.fixed_key ? var.tenant_api_key_values[each.key] : null}"


def test_tenant_outputs_map_ids_and_hide_values(variant):
    outputs = variant.service["output"]
    assert outputs["tenant_api_key_ids"]["value"].startswith("${{for tenant, key in aws_api_gateway_api_key.tenants_")
    assert outputs["tenant_api_key_ids"].get("sensitive") is None
    assert outputs["tenant_api_keys"]["sensitive"] is True


def test_per_method_throttles_land_on_the_plan_stage(variant):
    plan = only(variant.service, "aws_api_gateway_usage_plan", "usage-plan-general")
    assert plan["api_stages"][0]["throttle"] == [{"path": "/keys/POST", "rate_limit": 2, "burst_limit": 4}]


def test_no_tenants_no_tenant_resources(service):
    assert "variable" not in service
    assert all(not name.startswith(TENANTS) for name in resources(service, "aws_api_gateway_api_key"))


def test_adding_a_tenant_changes_only_its_map_entries(variant):
    # Stable ids: the resources are keyed by tenant id, so the other entries are untouched.
    keys = only(variant.service, "aws_api_gateway_api_key", TENANTS)["for_each"]
    assert list(keys) == sorted(keys)


BAD_TENANTS = [
    (
        "duplicate_id",
        '[[tenants]]\nid = "a"\nplan = "default"\n[[tenants]]\nid = "a"\nplan = "default"\n',
        "tenants[1].id: duplicate tenant id 'a'",
    ),
    (
        "unknown_plan",
        '[[tenants]]\nid = "a"\nplan = "gold"\n',
        "tenants[0].plan: names unknown plan 'gold' (known: default)",
    ),
    ("missing_id", '[[tenants]]\nplan = "default"\n', "tenants[0].id: required"),
    ("bad_id", '[[tenants]]\nid = "Acme Corp"\nplan = "default"\n', "tenants[0].id: must be 1-63 lowercase letters"),
    ("unknown_key", '[[tenants]]\nid = "a"\nplan = "default"\nkey_value = "x"\n', "tenants[0].key_value: unknown key"),
    (
        "enabled_not_bool",
        '[[tenants]]\nid = "a"\nplan = "default"\nenabled = "yes"\n',
        "tenants[0].enabled: must be true or false",
    ),
    ("not_a_table", 'tenants = ["a"]\n', "tenants: must be an array of tables"),
    (
        "bad_method_path",
        '[usage_plans.default.method_throttles."keys"]\nrate_limit = 1\n',
        "usage_plans.default.method_throttles: key 'keys' must be a resource path and method",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_TENANTS], ids=[c[0] for c in BAD_TENANTS])
def test_rejects_bad_tenant_settings(tmp_path: Path, text: str, expected: str):
    config = tmp_path / "tenants.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    assert any(line.startswith(f"{config}: ") and expected in line for line in str(raised.value).splitlines()), str(
        raised.value
    )


def test_rejects_more_keys_than_the_region_allows(tmp_path: Path):
    config = tmp_path / "many.toml"
    config.write_text("".join(f'[[tenants]]\nid = "t{i}"\nplan = "default"\n' for i in range(9_999)))
    with pytest.raises(SettingsError, match=r"tenants: 9999 tenants \+ 10 service key\(s\) exceed the 10000 API keys"):
        load_settings(config)
    config.write_text(
        "[rotation]\nenabled = false\n" + "".join(f'[[tenants]]\nid = "t{i}"\nplan = "default"\n' for i in range(9_999))
    )
    assert len(load_settings(config).tenants) == 9_999
