"""Top-level construct ids: part of every Terraform address below them, so renaming one needs a `moved` block.

The stacks create their top-level constructs with these ids, and tooling (`tools/diagram.py`, ...) reads
them back from the construct paths in the synth output; both import them from here so they cannot drift.
"""

from __future__ import annotations

# The service stack (the builders of constructs_lib/stacks/service/).
OPERATIONS_KEY = "operations-key"
KEY_GENERATOR = "key-generator"
TOKEN_AUTHORIZER = "token-authorizer"
ACCESS_LOGS = "access-logs"
API = "api"
USAGE_PLAN_PREFIX = "usage-plan-"  # one `usage-plan-<plan>` per usage plan: see `usage_plan`
SERVICE_API_KEY = "service-api-key"
API_KEY_PARAMETER = "api-key-parameter"
TENANTS = "tenants"
API_KEY_ROTATION = "api-key-rotation"
WAF = "waf"
CUSTOM_DOMAIN = "custom-domain"
MONITORING = "monitoring"

# The remote-state stack (constructs_lib/stacks/remote_state.py).
REMOTE_BACKEND = "remote-backend"


def usage_plan(plan: str) -> str:
    """The id of usage plan `plan`'s construct: `usage-plan-<plan>`."""
    return f"{USAGE_PLAN_PREFIX}{plan}"


def usage_plan_name(construct_id: str) -> str | None:
    """The plan of a `usage-plan-<plan>` construct id; None for any other id."""
    return construct_id.removeprefix(USAGE_PLAN_PREFIX) if construct_id.startswith(USAGE_PLAN_PREFIX) else None
