"""Per-tenant API keys, each attached to its tenant's usage plan, so throttle and quota are per tenant; and
the tenants' policies (`policies_file`), packaged with the key generator as `tenants.json`.

Resources: one `aws_api_gateway_api_key` and one `aws_api_gateway_usage_plan_key`, each with `for_each`
over a map keyed by tenant id (never list positions: adding or removing a tenant touches only that
tenant's two instances), and the sensitive variable `tenant_api_key_values` that supplies the values of
tenants with `fixed_key` at apply time. One resource per concern instead of one construct per tenant keeps
synth time flat up to the 10,000-key quota (a construct per tenant costs ~1.5 ms of jsii calls each).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.api_gateway_api_key import ApiGatewayApiKey
from cdktf_cdktf_provider_aws.api_gateway_usage_plan_key import ApiGatewayUsagePlanKey
from constructs import Construct

from .cdk import Fn, TerraformIterator, TerraformVariable, TerraformVariableValidationConfig, Token
from .validation import Problems, non_empty

KEY_VALUES_VARIABLE = "tenant_api_key_values"
POLICIES_FILE = "tenants.json"
"""Packaged next to the key generator's handler: a file, not an environment variable, because a Lambda
environment holds at most 4 KB and settings allow 10,000 tenants."""


@dataclass(frozen=True, kw_only=True)
class TenantPolicy:
    """What one tenant may create keys for; the key generator refuses anything else before any AWS call."""

    id: str
    allowed_accounts: tuple[str, ...]
    """Empty: the service's own account only."""
    allowed_regions: tuple[str, ...]
    """Already resolved against the service's list: empty means every region."""
    alias_prefix: str
    """Aliases the tenant may create are `alias/<prefix>...`; no other tenant's prefix overlaps it."""


def policies_file(policies: Iterable[TenantPolicy]) -> str:
    """`tenants.json`: `{"<id>": {"allowed_accounts": [...], "allowed_regions": [...], "alias_prefix": "..."}}`.

    Sorted keys and lists, fixed layout: the same settings always give the same bytes, so the code asset's
    hash (and the function) changes only when a policy does.
    """
    document = {
        policy.id: {
            "allowed_accounts": sorted(set(policy.allowed_accounts)),
            "allowed_regions": sorted(set(policy.allowed_regions)),
            "alias_prefix": policy.alias_prefix,
        }
        for policy in policies
    }
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=True) + "\n"


@dataclass(frozen=True, kw_only=True)
class Tenant:
    id: str
    plan: str
    enabled: bool = True
    fixed_key: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TenantKeysProps:
    key_name_prefix: str
    """Keys are named `<prefix>-<tenant id>`."""
    tenants: tuple[Tenant, ...]
    usage_plan_ids: Mapping[str, str]
    """Usage plan id (reference) by plan name."""


def _validate(props: TenantKeysProps) -> None:
    problems = Problems("TenantKeys")
    problems.check("key_name_prefix", props.key_name_prefix, non_empty)
    seen: set[str] = set()
    for index, tenant in enumerate(props.tenants):
        problems.check(f"tenants[{index}].id", tenant.id, non_empty)
        if tenant.id in seen:
            problems.add(f"tenants[{index}].id", tenant.id, "is a duplicate (ids key the for_each instances)")
        seen.add(tenant.id)
        if tenant.plan not in props.usage_plan_ids:
            known = ", ".join(sorted(props.usage_plan_ids))
            problems.add(f"tenants[{index}].plan", tenant.plan, f"must be a key of usage_plan_ids ({known})")
    problems.raise_if_any()


class TenantKeys(Construct):
    """Exposes `api_keys` (the `for_each` resource), `key_values` (the sensitive variable), and the expressions
    `key_ids_by_tenant` and `key_values_by_tenant` (maps by tenant id, the latter sensitive)."""

    def __init__(self, scope: Construct, id: str, props: TenantKeysProps) -> None:
        _validate(props)
        super().__init__(scope, id)
        variable = f"var.{KEY_VALUES_VARIABLE}"
        self.key_values = TerraformVariable(
            scope,
            KEY_VALUES_VARIABLE,
            type="map(string)",
            default={},
            sensitive=True,
            nullable=False,
            description="API key values of tenants with fixed_key = true, by tenant id (never in settings or JSON)",
            # Hand-written `for`: `TerraformIterator.from_list(...)` would render `[ for key, val in toset(...): ...]`.
            validation=[
                TerraformVariableValidationConfig(
                    condition=f'${{alltrue([for v in values({variable}) : can(regex("^[A-Za-z0-9]{{20,128}}$", v))])}}',
                    error_message="Each tenant API key value must be 20-128 letters and digits.",
                ),
                TerraformVariableValidationConfig(
                    condition=f"${{length(distinct(values({variable}))) == length({variable})}}",
                    error_message="Tenant API key values must be unique.",
                ),
            ],
        )
        keys = TerraformIterator.from_map(
            {
                tenant.id: {
                    "name": f"{props.key_name_prefix}-{tenant.id}",
                    "enabled": tenant.enabled,
                    "fixed_key": tenant.fixed_key,
                    "tags": {**tenant.tags, "Tenant": tenant.id, "UsagePlan": tenant.plan},
                }
                for tenant in sorted(props.tenants, key=lambda t: t.id)
            }
        )
        self.api_keys = ApiGatewayApiKey(
            self,
            "api-keys",
            for_each=keys,
            name=keys.get_string("name"),
            description="API key of tenant ${each.key}",
            enabled=keys.get_boolean("enabled"),
            # A fixed value must be supplied for its tenant; other keys get an AWS-generated value.
            value=f"${{each.value.fixed_key ? {variable}[each.key] : null}}",
            tags=keys.get_map("tags"),
        )
        plans = TerraformIterator.from_map(
            {tenant.id: tenant.plan for tenant in sorted(props.tenants, key=lambda t: t.id)}
        )
        ApiGatewayUsagePlanKey(
            self,
            "usage-plan-keys",
            for_each=plans,
            key_id=f"${{{self.api_keys.fqn}[each.key].id}}",
            key_type="API_KEY",
            usage_plan_id=Fn.lookup(dict(props.usage_plan_ids), Token.as_string(plans.value)),
        )

    # Hand-written `for` expressions: `TerraformIterator.from_resources(...).for_expression_for_map(...)` renders
    # `{ for key, val in ...: key => val.id }`, other bytes than the outputs have always had.
    @property
    def key_ids_by_tenant(self) -> str:
        """`{tenant id => API key id}`."""
        return f"${{{{for tenant, key in {self.api_keys.fqn} : tenant => key.id}}}}"

    @property
    def key_values_by_tenant(self) -> str:
        """`{tenant id => API key value}`: sensitive."""
        return f"${{{{for tenant, key in {self.api_keys.fqn} : tenant => key.value}}}}"
