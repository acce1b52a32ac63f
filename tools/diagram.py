"""Draw the service's architecture from the synthesized stacks: `python -m tools.diagram [--synth-dir DIR]
[--out FILE] [--dot-only]`.

The picture is grouped by concern, not one box per Terraform resource:

* every resource of `<synth-dir>/stacks/*/cdk.tf.json` is collapsed into the node of its top-level construct,
  read from its construct path (`resource["//"]["metadata"]["path"]`: `kms-key-generator/api/stage` belongs to
  node `kms-key-generator/api`, `kms-key-generator/api-key-rotation/function/logs/log-group` to
  `kms-key-generator/api-key-rotation`). A resource without a path gets a node of its own, so nothing is
  ever dropped; `Diagram.unaccounted` lists what no node holds (always empty, and tested);
* each node's label says what it holds, from the resources' own attributes ("POST /keys (API key required)",
  "stage v1 + client certificate", ...), one phrase per line; a resource type without a phrase below is
  still listed by its type name;
* edges come from references between resources of different nodes: `type.name` tokens in any `${...}`
  expression (also inside `${jsonencode(...)}`, where they appear bare) and `depends_on`, checked against
  the stack's resources (data sources are look-ups, not architecture, and are left out), de-duplicated per
  node pair and labelled by the resource types involved ("invokes", "filters requests to",
  "alarms on", ...). One deliberate omission: a node holding nothing but KMS keys (the operations key, used by
  nearly every other node) gets no edges; its label says what it encrypts instead ("encrypts 4 log groups,
  2 Lambda environments", ...). Edges that observe ("alarms on", "metrics from logs", "on dashboard") are
  drawn dotted, and they and other side relations do not push nodes along the left-to-right flow;
* nodes sit in one cluster per concern (edge & protection, API, Lambda, secrets & rotation, operations &
  observability, state, other) inside one cluster per stack; the edge and operations concerns are drawn as
  one column each. An external "Clients (x-api-key)" node calls the node holding the REST API, through the
  custom domain's node when there is one (and directly too unless the execute-api endpoint is disabled),
  and a stack whose S3 backend bucket is created by another stack gets a "Terraform state" edge to that
  bucket's node.

The DOT text is deterministic (everything sorted, no timestamps); the PNG is `dot -Tpng` of it. `--dot-only`
prints the DOT to stdout and needs no Graphviz.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from constructs_lib import construct_ids as ids
from constructs_lib.naming import Names
from tools import synth_output
from tools.paths import PROJECT_ROOT, SYNTH_DIR
from tools.synth_output import Resource, backend_block

DEFAULT_SYNTH_DIR = SYNTH_DIR
DEFAULT_OUT = PROJECT_ROOT / "docs" / "architecture.png"

CLIENTS = "clients"
STACK_PREFIX = "stack:"  # edge sources that stand for a whole stack (drawn from its cluster's border)
NO_PATH = "(no construct path)"
# What every remote-state stack's name ends with: `constructs_lib.naming` names those stacks.
REMOTE_STATE_SUFFIX = Names(service="", stage="").remote_state_stack

GRAPHVIZ_MISSING = (
    "Graphviz's `dot` is not on PATH, so the PNG cannot be rendered. Install Graphviz "
    "(Debian/Ubuntu: `apt-get install graphviz`; macOS: `brew install graphviz`) and run this again, "
    "or pass --dot-only to print the DOT text instead."
)


class DiagramError(Exception):
    """The synth output cannot be drawn (missing, unreadable), or Graphviz failed."""


class GraphvizMissingError(DiagramError):
    pass


# --- the model --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    key: str
    label: str
    fill: str
    border: str
    column: bool = False  # its nodes are drawn in one column (Graphviz `rank=same`), not spread along the flow


GROUPS = (
    Group("edge", "Edge & protection", "#e8f1fb", "#3b78c2", column=True),
    Group("api", "API (API Gateway)", "#f4ecfb", "#8e5cc4"),
    Group("lambda", "Lambda", "#fff4e5", "#e08a00"),
    Group("rotation", "Secrets & rotation", "#fdecec", "#c94a4a"),
    Group("operations", "Operations & observability", "#e9f5f4", "#2b8a80", column=True),
    Group("state", "Terraform state", "#eaf6ec", "#3f9a52"),
    Group("other", "Other", "#f2f2f2", "#888888"),
)
_GROUP_ORDER = {group.key: index for index, group in enumerate(GROUPS)}
_GROUPS = {group.key: group for group in GROUPS}


def group_of(stack: str, construct: str) -> str:
    """The concern a top-level construct belongs to."""
    if construct == ids.REMOTE_BACKEND or stack.endswith(REMOTE_STATE_SUFFIX):
        return "state"
    if construct in (ids.WAF, ids.CUSTOM_DOMAIN):
        return "edge"
    if construct in (ids.API, ids.SERVICE_API_KEY, ids.TENANTS) or ids.usage_plan_name(construct) is not None:
        return "api"
    if construct in (ids.KEY_GENERATOR, ids.TOKEN_AUTHORIZER):
        return "lambda"
    if construct in (ids.API_KEY_ROTATION, ids.API_KEY_PARAMETER):
        return "rotation"
    if construct in (ids.MONITORING, ids.ACCESS_LOGS, ids.OPERATIONS_KEY):
        return "operations"
    return "other"


_TITLES = {
    ids.API: "REST API",
    ids.SERVICE_API_KEY: "Static API key",
    ids.TENANTS: "Tenant API keys",
    ids.ACCESS_LOGS: "Access logs",
    ids.TOKEN_AUTHORIZER: "Token authorizer",
    ids.KEY_GENERATOR: "Key-generator Lambda",
    ids.API_KEY_ROTATION: "API-key rotation",
    ids.API_KEY_PARAMETER: "SSM parameter (live API key)",
    ids.REMOTE_BACKEND: "Remote state backend",
    ids.WAF: "Web application firewall",
    ids.CUSTOM_DOMAIN: "Custom domain",
    ids.MONITORING: "Monitoring",
    ids.OPERATIONS_KEY: "Operations key",
}


def title_of(construct: str) -> str:
    if construct in _TITLES:
        return _TITLES[construct]
    plan = ids.usage_plan_name(construct)
    if plan is not None:
        return f"Usage plan \u201c{plan}\u201d"
    return construct


@dataclass(frozen=True)
class Node:
    id: str
    stack: str  # "" for external nodes
    group: str  # "" for external nodes
    title: str
    lines: tuple[str, ...]
    members: tuple[str, ...]  # Resource.key of every resource collapsed into this node, sorted

    @property
    def external(self) -> bool:
        return not self.stack


@dataclass(frozen=True)
class Edge:
    source: str  # a node id, or STACK_PREFIX + stack name
    target: str
    label: str = ""
    ranks: bool = True  # False: drawn, but does not push the target to a later column (Graphviz `constraint`)


@dataclass(frozen=True)
class Cluster:
    id: str
    label: str
    stack: str
    group: str  # "" for a stack cluster
    nodes: tuple[str, ...]
    children: tuple[str, ...] = ()  # cluster ids nested in this one


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    clusters: tuple[Cluster, ...]
    resources: tuple[str, ...]  # Resource.key of every resource read from the synth, sorted

    def node(self, node_id: str) -> Node:
        return next(node for node in self.nodes if node.id == node_id)

    def cluster(self, cluster_id: str) -> Cluster:
        return next(cluster for cluster in self.clusters if cluster.id == cluster_id)

    @property
    def unaccounted(self) -> tuple[str, ...]:
        held = {key for node in self.nodes for key in node.members}
        return tuple(key for key in self.resources if key not in held)


# --- reading the synth ------------------------------------------------------------------------------------


def load_stacks(synth_dir: Path) -> dict[str, dict[str, Any]]:
    """`{stack name: cdk.tf.json}` of every stack of the synth (see `tools.synth_output`)."""
    try:
        return synth_output.stack_configs(synth_dir)
    except synth_output.NoStacks:
        raise DiagramError(
            f"no stacks in {synth_dir}/stacks/*/cdk.tf.json: run `make synth` first (or pass --synth-dir)"
        ) from None
    except synth_output.SynthOutputError as error:
        raise DiagramError(str(error)) from error


def resources_of(stack: str, document: Mapping[str, Any]) -> list[Resource]:
    """The managed resources of one stack (data sources are look-ups, not architecture), sorted."""
    return synth_output.resources_of(stack, document)


def construct_of(resource: Resource) -> str:
    """The top-level construct: the path's segment after the stack name."""
    segments = [segment for segment in resource.path.split("/") if segment]
    if segments and segments[0] == resource.stack:
        segments = segments[1:]
    return segments[0] if segments else f"{NO_PATH} {resource.address}"


# `type.name` (or `data.type.name`) anywhere in an expression; candidates are checked against real addresses.
_REFERENCE = re.compile(r"(?<![\w.-])(?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_-]*")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key != "//":
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def references(body: Mapping[str, Any], addresses: Iterable[str]) -> set[str]:
    """The addresses (`type.name`) among `addresses` that `body` refers to, in expressions or `depends_on`."""
    known = set(addresses)
    found: set[str] = set()
    for text in _strings({key: value for key, value in body.items() if key != "depends_on"}):
        if "${" in text:
            found.update(match for match in _REFERENCE.findall(text) if match in known)
    for entry in body.get("depends_on", []) or []:
        found.update(match for match in _REFERENCE.findall(str(entry)) if match in known)
    return found


# --- labels -----------------------------------------------------------------------------------------------

Bodies = Mapping[str, list[Mapping[str, Any]]]  # resource type -> bodies, of one node


def _ref_name(expression: Any, rtype: str) -> str | None:
    match = re.search(re.escape(rtype) + r"\.([A-Za-z0-9_-]+)", str(expression or ""))
    return match.group(1) if match else None


def _by_name(resources: Iterable[Resource]) -> dict[str, Mapping[str, Any]]:
    return {resource.name: resource.body for resource in resources}


def _count(noun: str, items: list[Any]) -> str:
    return noun if len(items) == 1 else f"{len(items)} {noun}s"


def _routes(node: list[Resource]) -> list[str]:
    """`METHOD /path` of every API Gateway method in the node."""
    paths = _by_name(r for r in node if r.rtype == "aws_api_gateway_resource")
    routes = []
    for method in sorted((r for r in node if r.rtype == "aws_api_gateway_method"), key=lambda r: r.name):
        resource = paths.get(_ref_name(method.body.get("resource_id"), "aws_api_gateway_resource") or "", {})
        routes.append(f"{method.body.get('http_method', '?')} /{resource.get('path_part', '')}")
    return routes


def _with_endpoint_types(name: str, body: Mapping[str, Any]) -> str:
    """`name (regional)`: an API or domain name with its endpoint types, when it has any."""
    types = "/".join(body.get("endpoint_configuration", {}).get("types", []))
    return f"{name}" + (f" ({types.lower()})" if types else "")


def _api_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    for api in bodies.get("aws_api_gateway_rest_api", []):
        phrases.append(_with_endpoint_types(api.get("name", "REST API"), api))
    methods = sorted((r for r in node if r.rtype == "aws_api_gateway_method"), key=lambda r: r.name)
    for route, method in zip(_routes(node), methods, strict=False):
        phrases.append(route + (" (API key required)" if method.body.get("api_key_required") else ""))
    for integration in bodies.get("aws_api_gateway_integration", []):
        target = "Lambda" if "aws_lambda_function." in str(integration.get("uri", "")) else integration.get("type", "?")
        template = " + mapping template" if integration.get("request_templates") else ""
        phrases.append(f"{target} integration{template}")
    statuses = sorted(
        {
            str(body.get("status_code"))
            for rtype in ("aws_api_gateway_method_response", "aws_api_gateway_integration_response")
            for body in bodies.get(rtype, [])
            if "${" not in str(body.get("status_code"))  # integration responses refer to their method response's
        }
    )
    if statuses:
        phrases.append("responses " + "/".join(statuses))
    if "aws_api_gateway_model" in bodies or "aws_api_gateway_request_validator" in bodies:
        phrases.append("request model + validator")
    for authorizer in bodies.get("aws_api_gateway_authorizer", []):
        ttl = authorizer.get("authorizer_result_ttl_in_seconds")
        kind = str(authorizer.get("type", "TOKEN")).lower()
        phrases.append(f"Lambda {kind} authorizer" + (f" (cached {ttl} s)" if ttl else ""))
    for stage in bodies.get("aws_api_gateway_stage", []):
        cert = " + client certificate" if stage.get("client_certificate_id") else ""
        phrases.append(f"stage {stage.get('stage_name', '?')}{cert}")
    for method_settings in bodies.get("aws_api_gateway_method_settings", []):
        settings = method_settings.get("settings", {})
        parts = []
        if settings.get("logging_level") not in (None, "OFF"):
            parts.append(f"{settings['logging_level']} logs")
        if settings.get("metrics_enabled"):
            parts.append("metrics")
        if settings.get("throttling_rate_limit") is not None:
            parts.append(f"{settings['throttling_rate_limit']} req/s (burst {settings.get('throttling_burst_limit')})")
        phrases.append("stage method settings" + (f": {', '.join(parts)}" if parts else ""))
    extras = [
        phrase
        for rtype, phrase in (
            ("aws_api_gateway_rest_api_policy", "resource policy"),
            ("aws_api_gateway_deployment", "deployment"),
        )
        if rtype in bodies
    ]
    if extras:
        phrases.append(", ".join(extras))
    return phrases


def _usage_plan_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    for plan in bodies.get("aws_api_gateway_usage_plan", []):
        throttle, quota = plan.get("throttle_settings", {}), plan.get("quota_settings", {})
        parts = []
        if throttle:
            parts.append(f"{throttle.get('rate_limit')} req/s (burst {throttle.get('burst_limit')})")
        if quota:
            parts.append(f"{quota.get('limit')} per {str(quota.get('period', '')).lower()}")
        phrases.append(" · ".join(parts) or plan.get("name", "usage plan"))
    return phrases


def _api_key_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    for key in bodies.get("aws_api_gateway_api_key", []):
        each = key.get("for_each")
        if isinstance(each, Mapping):  # one key per entry (tenants): name them, not the `${each...}` template
            names = (str(item.get("name", name)) if isinstance(item, Mapping) else name for name, item in each.items())
            phrases.extend(f"key {name}" for name in sorted(names))
        else:
            phrases.append(f"key {key.get('name', '')}".strip())
    if "aws_api_gateway_usage_plan_key" in bodies:
        phrases.append("joined to its usage plan")
    return phrases


def _lambda_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    for function in bodies.get("aws_lambda_function", []):
        memory = f"{function['memory_size']} MB" if "memory_size" in function else None
        details = ", ".join(str(part) for part in (function.get("runtime"), memory) if part)
        phrases.append(f"function {function.get('function_name', '?')}")
        if details:
            phrases.append(details)
    roles = bodies.get("aws_iam_role", [])
    if roles:
        noun = "execution role" if "aws_lambda_function" in bodies else "IAM role"
        phrases.append(_count(noun, roles) + (" + policy" if "aws_iam_role_policy" in bodies else ""))
    groups = bodies.get("aws_cloudwatch_log_group", [])
    if groups:
        never = all(group.get("retention_in_days", 0) == 0 for group in groups)
        phrases.append(_count("log group", groups) + (" (never expires)" if never else ""))
    extras = []
    if "aws_lambda_permission" in bodies:
        extras.append(_count("invoke permission", bodies["aws_lambda_permission"]))
    for invocation in bodies.get("aws_lambda_invocation", []):
        extras.append("cleanup on destroy" if invocation.get("lifecycle_scope") == "CRUD" else "invocation")
    if extras:
        phrases.append(", ".join(extras))
    return phrases


def _secret_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = [f"secret {secret.get('name', '?')}" for secret in bodies.get("aws_secretsmanager_secret", [])]
    for schedule in bodies.get("aws_secretsmanager_secret_rotation", []):
        days = schedule.get("rotation_rules", {}).get("automatically_after_days")
        phrases.append(f"rotated every {days} days" if days else "rotation schedule")
    return phrases


def _ssm_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    return [f"{p.get('type', 'String')} {p.get('name', '?')}" for p in bodies.get("aws_ssm_parameter", [])]


def _kms_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    aliases = defaultdict(list)
    for alias in bodies.get("aws_kms_alias", []):
        aliases[_ref_name(alias.get("target_key_id"), "aws_kms_key")].append(alias.get("name", "?"))
    keys = [resource for resource in node if resource.rtype == "aws_kms_key"]
    phrases = [" ".join(["KMS key", *sorted(aliases.get(key.name, []))]) for key in keys]
    return phrases


_BUCKET_FEATURES = (
    ("aws_s3_bucket_versioning", "versioned"),
    ("aws_s3_bucket_server_side_encryption_configuration", "encrypted"),
    ("aws_s3_bucket_public_access_block", "public access blocked"),
    ("aws_s3_bucket_ownership_controls", "owner enforced"),
    ("aws_s3_bucket_policy", "bucket policy"),
)


def _bucket_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = [f"S3 bucket {bucket.get('bucket', '?')}" for bucket in bodies.get("aws_s3_bucket", [])]
    features = [label for rtype, label in _BUCKET_FEATURES if rtype in bodies]
    if features:
        phrases.append(", ".join(features[:3]))
        if features[3:]:
            phrases.append(", ".join(features[3:]))
    for table in bodies.get("aws_dynamodb_table", []):
        kind = "lock table" if table.get("hash_key") == "LockID" else "table"
        phrases.append(f"DynamoDB {kind} {table.get('name', '?')}")
    return phrases


def _waf_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    for acl in bodies.get("aws_wafv2_web_acl", []):
        rules = [rule.get("statement", {}) for rule in acl.get("rule", []) or []]
        managed = [rule for rule in rules if "managed_rule_group_statement" in rule]
        limits = [rule["rate_based_statement"] for rule in rules if "rate_based_statement" in rule]
        kinds = [kind for kind, present in (("managed rules", managed), ("rate limit", limits)) if present]
        phrases.append("WAFv2 web ACL" + (f" ({' + '.join(kinds)})" if kinds else ""))
        details = [_count("managed rule group", managed)] if managed else []
        for limit in limits:
            window = int(limit.get("evaluation_window_sec", 300))
            per = str(limit.get("aggregate_key_type", "IP"))
            details.append(f"{limit.get('limit')} req/{window // 60} min per {per}")
        if details:
            phrases.append(" · ".join(details))
    if "aws_wafv2_web_acl_association" in bodies:
        phrases.append("attached to the stage")
    for logging in bodies.get("aws_wafv2_web_acl_logging_configuration", []):
        redacted = [
            field["single_header"].get("name", "?")
            for field in logging.get("redacted_fields", []) or []
            if isinstance(field, Mapping) and "single_header" in field
        ]
        phrases.append("request logging" + (f" ({', '.join(redacted)} redacted)" if redacted else ""))
    return phrases


def _domain_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    for domain in bodies.get("aws_api_gateway_domain_name", []):
        phrases.append(_with_endpoint_types(domain.get("domain_name", "?"), domain))
        policy = str(domain.get("security_policy", "")).removeprefix("TLS_").replace("_", ".")
        certificate = " + ACM certificate" if "aws_acm_certificate" in bodies else ""
        phrases.append((f"TLS {policy} " if policy else "") + f"custom domain{certificate}")
    if "aws_api_gateway_domain_name" not in bodies and "aws_acm_certificate" in bodies:
        phrases.append(_count("ACM certificate", bodies["aws_acm_certificate"]))
    certificates = bodies.get("aws_acm_certificate", [])
    methods = "/".join(sorted({str(cert.get("validation_method", "")).upper() for cert in certificates} - {""}))
    if "aws_acm_certificate_validation" in bodies:
        phrases.append("certificate validated" + (f" ({methods})" if methods else ""))
    for mapping in bodies.get("aws_api_gateway_base_path_mapping", []):
        phrases.append(f"base path /{mapping.get('base_path') or ''} \u2192 stage")
    records = bodies.get("aws_route53_record", [])
    if records:
        aliases = [record for record in records if "alias" in record]
        kinds = ([_count("alias record", aliases)] if aliases else []) + (
            [_count("validation record", records[len(aliases) :])] if len(records) > len(aliases) else []
        )
        phrases.append("Route 53 " + " + ".join(kinds))
    return phrases


def _monitoring_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    alarms, topics = bodies.get("aws_cloudwatch_metric_alarm", []), bodies.get("aws_sns_topic", [])
    encrypted = bool(topics) and all(topic.get("kms_master_key_id") for topic in topics)
    topic = (_count("SNS topic", topics) + (" (encrypted)" if encrypted else "")) if topics else ""
    if alarms:
        phrases.append(_count("alarm", alarms) + (f" \u2192 {topic}" if topic else ""))
    elif topic:
        phrases.append(topic)
    protocols: dict[str, list[Any]] = defaultdict(list)
    for subscription in bodies.get("aws_sns_topic_subscription", []):
        protocol = str(subscription.get("protocol", "?"))
        protocols["e-mail" if protocol == "email" else protocol].append(subscription)
    for protocol, subscriptions in sorted(protocols.items()):
        count = len(subscriptions)
        phrases.append(f"{protocol} to {count} subscriber" + ("s" if count > 1 else ""))
    if "aws_cloudwatch_log_metric_filter" in bodies:
        phrases.append(_count("log metric filter", bodies["aws_cloudwatch_log_metric_filter"]))
    if "aws_cloudwatch_dashboard" in bodies:
        phrases.append(_count("dashboard", bodies["aws_cloudwatch_dashboard"]))
    return phrases


def _account_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    return ["API Gateway account (CloudWatch role)" for _ in bodies.get("aws_api_gateway_account", [])]


# Each describer names the resource types it describes; a type no describer names is listed by type name.
_DESCRIBERS: tuple[tuple[tuple[str, ...], Callable[[list[Resource], Bodies], list[str]]], ...] = (
    (
        (
            "aws_api_gateway_rest_api",
            "aws_api_gateway_resource",
            "aws_api_gateway_method",
            "aws_api_gateway_integration",
            "aws_api_gateway_method_response",
            "aws_api_gateway_integration_response",
            "aws_api_gateway_model",
            "aws_api_gateway_request_validator",
            "aws_api_gateway_stage",
            "aws_api_gateway_client_certificate",
            "aws_api_gateway_rest_api_policy",
            "aws_api_gateway_deployment",
            "aws_api_gateway_authorizer",
            "aws_api_gateway_method_settings",
        ),
        _api_phrases,
    ),
    (("aws_api_gateway_usage_plan",), _usage_plan_phrases),
    (("aws_api_gateway_api_key", "aws_api_gateway_usage_plan_key"), _api_key_phrases),
    (
        (
            "aws_wafv2_web_acl",
            "aws_wafv2_web_acl_association",
            "aws_wafv2_web_acl_logging_configuration",
        ),
        _waf_phrases,
    ),
    (
        (
            "aws_api_gateway_domain_name",
            "aws_api_gateway_base_path_mapping",
            "aws_acm_certificate",
            "aws_acm_certificate_validation",
            "aws_route53_record",
        ),
        _domain_phrases,
    ),
    (
        (
            "aws_cloudwatch_metric_alarm",
            "aws_sns_topic",
            "aws_sns_topic_subscription",
            "aws_cloudwatch_log_metric_filter",
            "aws_cloudwatch_dashboard",
        ),
        _monitoring_phrases,
    ),
    (("aws_api_gateway_account",), _account_phrases),
    (("aws_secretsmanager_secret", "aws_secretsmanager_secret_rotation"), _secret_phrases),
    (("aws_ssm_parameter",), _ssm_phrases),
    (
        (
            "aws_lambda_function",
            "aws_iam_role",
            "aws_iam_role_policy",
            "aws_cloudwatch_log_group",
            "aws_lambda_permission",
            "aws_lambda_invocation",
        ),
        _lambda_phrases,
    ),
    (
        ("aws_s3_bucket", "aws_dynamodb_table", *(rtype for rtype, _ in _BUCKET_FEATURES)),
        _bucket_phrases,
    ),
    (("aws_kms_key", "aws_kms_alias"), _kms_phrases),
)


def describe(node: list[Resource]) -> tuple[str, ...]:
    """One phrase per line saying what the node's resources are."""
    bodies: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for resource in sorted(node, key=lambda r: r.key):
        bodies[resource.rtype].append(resource.body)
    lines: list[str] = []
    described: set[str] = set()
    for types, describer in _DESCRIBERS:
        present = {rtype: bodies[rtype] for rtype in types if rtype in bodies}
        if present:
            lines.extend(describer(node, present))
            described.update(present)
    for rtype in sorted(set(bodies) - described):
        lines.append(_count(rtype.removeprefix("aws_").replace("_", " "), bodies[rtype]))
    return tuple(dict.fromkeys(line for line in lines if line))


# Edge labels, by (referring type, referred type); the first rule that matches a node pair names its edge. ANY
# stands for every type. Edges labelled as in _NON_RANKING hang a node off another rather than continuing the
# request flow, so they do not add a column to the left-to-right layout.
ANY = "*"
_WATCHING = frozenset({"alarms on", "metrics from logs", "on dashboard"})  # drawn dotted: observes, not flow
_NON_RANKING = frozenset({"throttles / quotas", "attaches keys to", "knows operator keys by", *_WATCHING})
_EDGE_LABELS = (
    (("aws_api_gateway_integration", "aws_lambda_function"), "invokes"),
    (("aws_secretsmanager_secret", "aws_api_gateway_usage_plan"), "attaches keys to"),
    (("aws_iam_role_policy", "aws_api_gateway_usage_plan"), "attaches keys to"),
    (("aws_api_gateway_usage_plan_key", "aws_api_gateway_usage_plan"), "attaches key to"),
    (("aws_lambda_function", "aws_ssm_parameter"), "reads/writes key"),
    # The key generator's OPERATOR_SECRET_ARN: the rotation's keys, tagged with it, are the operator's.
    (("aws_lambda_function", "aws_secretsmanager_secret"), "knows operator keys by"),
    (("aws_iam_role_policy", "aws_ssm_parameter"), "reads/writes key"),
    (("aws_ssm_parameter", "aws_api_gateway_api_key"), "stores key value"),
    (("aws_api_gateway_usage_plan", "aws_api_gateway_stage"), "throttles / quotas"),
    (("aws_api_gateway_stage", "aws_cloudwatch_log_group"), "access logs"),
    (("aws_api_gateway_authorizer", "aws_lambda_function"), "authorizes via"),
    (("aws_wafv2_web_acl_association", "aws_api_gateway_stage"), "filters requests to"),
    (("aws_api_gateway_base_path_mapping", "aws_api_gateway_stage"), "routes to stage"),
    (("aws_api_gateway_base_path_mapping", "aws_api_gateway_rest_api"), "routes to"),
    (("aws_cloudwatch_metric_alarm", ANY), "alarms on"),
    (("aws_cloudwatch_log_metric_filter", "aws_cloudwatch_log_group"), "metrics from logs"),
    (("aws_cloudwatch_dashboard", ANY), "on dashboard"),
    ((ANY, "aws_kms_key"), "encrypts with"),  # a key in a node with more than keys (key-only nodes: _KEY_TYPES)
)


def edge_label(pairs: set[tuple[str, str]]) -> str:
    def matches(rule: tuple[str, str], pair: tuple[str, str]) -> bool:
        return all(wanted in (ANY, found) for wanted, found in zip(rule, pair, strict=False))

    return next((label for rule, label in _EDGE_LABELS if any(matches(rule, pair) for pair in pairs)), "")


# A node holding nothing but KMS keys (and their aliases) is a shared key, like the operations key that encrypts
# the service's logs, alarm topic and Lambda environments. The references to it are not drawn
# as edges (one from nearly every node would cross the whole picture): the key's node lists what it encrypts
# instead, counted by type from the referring resources ("encrypts 4 log groups, 2 Lambda environments", ...).
# IAM policies that merely grant use of the key are not counted.
_KEY_TYPES = frozenset({"aws_kms_key", "aws_kms_alias"})
_GRANTS = frozenset({"aws_iam_role_policy", "aws_iam_policy", "aws_iam_role", "aws_kms_grant"})
_ENCRYPTED = (
    ("aws_cloudwatch_log_group", "log group"),
    ("aws_lambda_function", "Lambda environment"),
    ("aws_sns_topic", "SNS topic"),
)


def _encrypts_phrases(users: Iterable[Resource]) -> list[str]:
    by_type: dict[str, set[str]] = defaultdict(set)
    for resource in users:
        if resource.rtype not in _GRANTS:
            by_type[resource.rtype].add(resource.key)
    nouns = dict(_ENCRYPTED)
    order = [rtype for rtype, _ in _ENCRYPTED if rtype in by_type] + sorted(set(by_type) - set(nouns))
    parts = [
        _count(nouns.get(rtype) or rtype.removeprefix("aws_").replace("_", " "), sorted(by_type[rtype]))
        for rtype in order
    ]
    lines = [", ".join(parts[index : index + 2]) for index in range(0, len(parts), 2)]
    return [("encrypts " if index == 0 else "") + line for index, line in enumerate(lines)]


# --- building the diagram ---------------------------------------------------------------------------------


_BACKEND_LOCKS = (("dynamodb_table", "DynamoDB lock"), ("use_lockfile", "lock file"))


def build_diagram(stacks: Mapping[str, Mapping[str, Any]]) -> Diagram:
    """Collapse every stack's resources into concern nodes and their references into node edges."""
    all_resources: list[Resource] = []
    node_of: dict[str, str] = {}  # Resource.key -> node id
    members: dict[str, list[Resource]] = defaultdict(list)
    for stack in sorted(stacks):
        for resource in resources_of(stack, stacks[stack]):
            node_id = f"{stack}/{construct_of(resource)}"
            all_resources.append(resource)
            node_of[resource.key] = node_id
            members[node_id].append(resource)

    nodes = []
    for node_id in sorted(members):
        held = members[node_id]
        stack, construct = held[0].stack, construct_of(held[0])
        nodes.append(
            Node(
                id=node_id,
                stack=stack,
                group=group_of(stack, construct),
                title=title_of(construct),
                lines=describe(held),
                members=tuple(sorted(resource.key for resource in held)),
            )
        )

    key_nodes = {node_id for node_id, held in members.items() if all(r.rtype in _KEY_TYPES for r in held)}
    key_users: dict[str, list[Resource]] = defaultdict(list)  # key node -> resources elsewhere that refer to it
    pairs: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    by_stack: dict[str, list[Resource]] = defaultdict(list)
    for resource in all_resources:
        by_stack[resource.stack].append(resource)
    for held in by_stack.values():
        addresses = {resource.address: resource for resource in held}
        for resource in held:
            for address in sorted(references(resource.body, addresses)):
                target = addresses[address]
                source_node, target_node = node_of[resource.key], node_of[target.key]
                if source_node == target_node:
                    continue
                if target_node in key_nodes:
                    key_users[target_node].append(resource)
                else:
                    pairs[(source_node, target_node)].add((resource.rtype, target.rtype))
    nodes = [
        replace(node, lines=node.lines + tuple(_encrypts_phrases(key_users[node.id]))) if node.id in key_users else node
        for node in nodes
    ]
    edges = []
    for (source, target), types in pairs.items():
        label = edge_label(types)
        edges.append(Edge(source, target, label, ranks=label not in _NON_RANKING))

    api_nodes = sorted({node_of[r.key] for r in all_resources if r.rtype == "aws_api_gateway_rest_api"})
    external = []
    if api_nodes:
        external.append(Node(CLIENTS, "", "", "Clients", ("HTTPS, header x-api-key",), ()))
        edges.extend(_client_edges(api_nodes, all_resources, node_of, members))

    for stack in sorted(stacks):
        backend = backend_block(stacks[stack], "s3")
        if not backend:
            continue
        bucket = backend.get("bucket")
        holders = sorted(
            node_of[resource.key]
            for resource in all_resources
            if resource.rtype == "aws_s3_bucket" and resource.body.get("bucket") == bucket
        )
        if not holders:
            holder = f"external:s3:{bucket}"
            external.append(Node(holder, "", "", "S3 state bucket", (f"{bucket} (not in this app)",), ()))
            holders = [holder]
        locks = [lock for key, lock in _BACKEND_LOCKS if backend.get(key)]
        label = "Terraform state" + (f"\n(S3 backend, {' + '.join(locks)})" if locks else "\n(S3 backend)")
        # Not a step of the request flow: it must not push the state stack into a column of its own.
        edges.extend(Edge(STACK_PREFIX + stack, holder, label, ranks=False) for holder in holders)

    return Diagram(
        nodes=tuple(sorted(nodes + external, key=lambda node: node.id)),
        edges=tuple(sorted(set(edges), key=lambda edge: (edge.source, edge.target, edge.label))),
        clusters=_clusters(nodes),
        resources=tuple(sorted(resource.key for resource in all_resources)),
    )


def _client_edges(
    api_nodes: list[str],
    all_resources: list[Resource],
    node_of: Mapping[str, str],
    members: Mapping[str, list[Resource]],
) -> list[Edge]:
    """Clients call each REST API, labelled with its routes; through a custom domain (base path mapping) when
    there is one, and directly too unless the API's default execute-api endpoint is disabled."""
    edges = []
    for api_node in api_nodes:
        routes = _routes(members[api_node])
        apis = [r for r in members[api_node] if r.rtype == "aws_api_gateway_rest_api"]
        mappings = [
            mapping
            for mapping in all_resources
            if mapping.rtype == "aws_api_gateway_base_path_mapping"
            and any(
                mapping.stack == api.stack and _ref_name(mapping.body.get("api_id"), api.rtype) == api.name
                for api in apis
            )
        ]
        if not mappings or any(not api.body.get("disable_execute_api_endpoint") for api in apis):
            edges.append(Edge(CLIENTS, api_node, "\n".join(routes)))
        for mapping in mappings:
            domain_name = _ref_name(mapping.body.get("domain_name"), "aws_api_gateway_domain_name")
            domains = _by_name(r for r in members[node_of[mapping.key]] if r.rtype == "aws_api_gateway_domain_name")
            host = str(domains.get(domain_name or "", {}).get("domain_name", "custom domain"))
            base = str(mapping.body.get("base_path") or "").strip("/")
            prefix = f"/{base}" if base else ""
            paths = [route.replace(" /", f" {prefix}/", 1) for route in routes]
            edges.append(Edge(CLIENTS, node_of[mapping.key], "\n".join([host, *paths])))
    return edges


def stack_cluster_id(stack: str) -> str:
    return f"cluster_{stack}"


def group_cluster_id(stack: str, group: str) -> str:
    return f"cluster_{stack}_{group}"


def _clusters(nodes: list[Node]) -> tuple[Cluster, ...]:
    """A cluster per stack; inside it a cluster per concern, unless the stack has one concern only."""
    by_stack: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for node in nodes:
        by_stack[node.stack][node.group].append(node.id)
    clusters = []
    for stack in sorted(by_stack):
        groups = sorted(by_stack[stack], key=_GROUP_ORDER.__getitem__)
        if len(groups) == 1:
            (group,) = groups
            label = f"{_GROUPS[group].label}\nstack {stack}"
            nodes_in = tuple(sorted(by_stack[stack][group]))
            clusters.append(Cluster(stack_cluster_id(stack), label, stack, group, nodes_in))
            continue
        children = tuple(group_cluster_id(stack, group) for group in groups)
        clusters.append(Cluster(stack_cluster_id(stack), f"stack {stack}", stack, "", (), children))
        for group in groups:
            nodes_in = tuple(sorted(by_stack[stack][group]))
            clusters.append(Cluster(group_cluster_id(stack, group), _GROUPS[group].label, stack, group, nodes_in))
    return tuple(clusters)


# --- DOT --------------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _node_label(node: Node) -> str:
    body = "<BR/>".join(_html(line) for line in node.lines)
    detail = f'<BR/><FONT POINT-SIZE="12" COLOR="#333333">{body}</FONT>' if body else ""
    return f'<<FONT POINT-SIZE="15"><B>{_html(node.title)}</B></FONT>{detail}>'


def render_dot(diagram: Diagram) -> str:
    """Graphviz DOT for the diagram: left to right, one cluster per stack and concern, sorted throughout."""
    stacks = sorted({node.stack for node in diagram.nodes if node.stack})
    services = [stack for stack in stacks if not stack.endswith(REMOTE_STATE_SUFFIX)] or stacks
    title = _html(", ".join(services) + ": architecture")
    lines = [
        "digraph architecture {",
        '  graph [rankdir=LR, compound=true, newrank=true, fontname="Helvetica", fontsize=16, '
        "nodesep=0.35, ranksep=0.5, pad=0.3, dpi=110, labelloc=t, "
        f'label=<<B>{title}</B><BR/><FONT POINT-SIZE="12">one box per concern (top-level construct), '
        "edges from Terraform references; drawn by tools/diagram.py from the synth</FONT>>];",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#555555", fontname="Helvetica", '
        'margin="0.2,0.1"];',
        '  edge [fontname="Helvetica", fontsize=12, color="#444444", fontcolor="#222222", arrowsize=0.8];',
    ]

    def node_line(node: Node, indent: str) -> str:
        attributes = [f"label={_node_label(node)}"]
        if node.external:
            attributes.append('style="rounded,dashed", fillcolor="#ffffff"')
        else:
            attributes.append(f'color="{_GROUPS[node.group].border}"')
        return f"{indent}{_quote(node.id)} [{', '.join(attributes)}];"

    for node in diagram.nodes:
        if node.external:
            lines.append(node_line(node, "  "))

    def emit(cluster: Cluster, indent: str) -> None:
        group = _GROUPS.get(cluster.group)
        style = (
            f'style="rounded,filled", fillcolor="{group.fill}", color="{group.border}"'
            if group
            else 'style="rounded,dashed", color="#777777", fillcolor="#ffffff"'
        )
        lines.append(f"{indent}subgraph {_quote(cluster.id)} {{")
        lines.append(f"{indent}  graph [label={_quote(cluster.label)}, {style}, fontsize=15, labeljust=l, margin=14];")
        for child in cluster.children:
            emit(diagram.cluster(child), indent + "  ")
        for node_id in cluster.nodes:
            lines.append(node_line(diagram.node(node_id), indent + "  "))
        if group and group.column and len(cluster.nodes) > 1:
            lines.append(f"{indent}  {{rank=same; {'; '.join(_quote(node_id) for node_id in cluster.nodes)};}}")
        lines.append(f"{indent}}}")

    nested = {child for cluster in diagram.clusters for child in cluster.children}
    for cluster in diagram.clusters:
        if cluster.id not in nested:
            emit(cluster, "  ")

    for edge in diagram.edges:
        attributes = []
        source = edge.source
        if source.startswith(STACK_PREFIX):
            stack = source.removeprefix(STACK_PREFIX)
            source = _stack_anchor(diagram, stack)
            attributes.append(f"ltail={_quote(stack_cluster_id(stack))}")
            attributes.append('style=dashed, color="#3f9a52", fontcolor="#2d6e3a"')
        if edge.label:
            # Graphviz centres the label of an edge that does not rank on the line itself, or inside a cluster
            # it crosses: put it beside the edge (`xlabel`) instead.
            kind = "label" if edge.ranks else "xlabel"
            attributes.append(f"{kind}={_quote(edge.label)}")
        if not edge.ranks:
            attributes.append("constraint=false")
        if edge.label in _WATCHING:
            attributes.append('style=dotted, color="#2b8a80", fontcolor="#1f6b63"')
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {_quote(source)} -> {_quote(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _stack_anchor(diagram: Diagram, stack: str) -> str:
    """The node a whole-stack edge starts from (it is clipped at the stack's cluster border)."""
    held = [node for node in diagram.nodes if node.stack == stack]
    return min(held, key=lambda node: (-_GROUP_ORDER[node.group], node.id)).id


def render_png(dot_text: str, out: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissingError(GRAPHVIZ_MISSING)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([dot, "-Tpng", "-o", str(out)], input=dot_text, text=True, capture_output=True)
    if result.returncode != 0:
        raise DiagramError(f"`dot -Tpng` failed (exit {result.returncode}):\n{result.stderr}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.diagram",
        description="Draw the architecture (one box per concern) from the synthesized stacks, as DOT and PNG.",
    )
    parser.add_argument("--synth-dir", type=Path, default=DEFAULT_SYNTH_DIR, help="cdktf output (default: cdktf.out)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write (default: docs/architecture.png)")
    parser.add_argument("--dot-only", action="store_true", help="print the DOT text to stdout; no Graphviz needed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        diagram = build_diagram(load_stacks(args.synth_dir))
        dot_text = render_dot(diagram)
        if args.dot_only:
            sys.stdout.write(dot_text)
            return 0
        render_png(dot_text, args.out)
    except DiagramError as error:
        print(f"diagram: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(diagram.nodes)} nodes, {len(diagram.edges)} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
