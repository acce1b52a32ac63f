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
  node pair and labelled by the resource types involved ("invokes", "reads/writes key", ...);
* nodes sit in one cluster per concern (API, Lambda, secrets & rotation, state, other) inside one cluster
  per stack; an external "Clients (x-api-key)" node calls the node holding the REST API, and a stack whose
  S3 backend bucket is created by another stack gets a "Terraform state" edge to that bucket's node.

The DOT text is deterministic (everything sorted, no timestamps); the PNG is `dot -Tpng` of it. `--dot-only`
prints the DOT to stdout and needs no Graphviz.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYNTH_DIR = PROJECT_ROOT / "cdktf.out"
DEFAULT_OUT = PROJECT_ROOT / "docs" / "architecture.png"

CLIENTS = "clients"
STACK_PREFIX = "stack:"  # edge sources that stand for a whole stack (drawn from its cluster's border)
NO_PATH = "(no construct path)"

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
class Resource:
    stack: str
    rtype: str
    name: str
    path: str
    body: Mapping[str, Any]

    @property
    def address(self) -> str:
        return f"{self.rtype}.{self.name}"

    @property
    def key(self) -> str:
        """Unique across stacks: `<stack>:<type>.<name>`."""
        return f"{self.stack}:{self.address}"


@dataclass(frozen=True)
class Group:
    key: str
    label: str
    fill: str
    border: str


GROUPS = (
    Group("api", "API (API Gateway)", "#f4ecfb", "#8e5cc4"),
    Group("lambda", "Lambda", "#fff4e5", "#e08a00"),
    Group("rotation", "Secrets & rotation", "#fdecec", "#c94a4a"),
    Group("state", "Terraform state", "#eaf6ec", "#3f9a52"),
    Group("other", "Other", "#f2f2f2", "#888888"),
)
_GROUP_ORDER = {group.key: index for index, group in enumerate(GROUPS)}
_GROUPS = {group.key: group for group in GROUPS}


def group_of(stack: str, construct: str) -> str:
    """The concern a top-level construct belongs to."""
    if construct == "remote-backend" or stack.endswith("-remote-state"):
        return "state"
    if construct in ("api", "service-api-key", "tenants", "access-logs") or construct.startswith("usage-plan-"):
        return "api"
    if construct in ("key-generator", "token-authorizer"):
        return "lambda"
    if construct in ("api-key-rotation", "api-key-parameter"):
        return "rotation"
    return "other"


_TITLES = {
    "api": "REST API",
    "service-api-key": "Static API key",
    "tenants": "Tenant API keys",
    "access-logs": "Access logs",
    "token-authorizer": "Token authorizer",
    "key-generator": "Key-generator Lambda",
    "api-key-rotation": "API-key rotation",
    "api-key-parameter": "SSM parameter (live API key)",
    "remote-backend": "Remote state backend",
}


def title_of(construct: str) -> str:
    if construct in _TITLES:
        return _TITLES[construct]
    if construct.startswith("usage-plan-"):
        return f"Usage plan \u201c{construct.removeprefix('usage-plan-')}\u201d"
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
    """`{stack name: cdk.tf.json}` for every `<synth_dir>/stacks/*/cdk.tf.json`."""
    files = sorted(Path(synth_dir).glob("stacks/*/cdk.tf.json"))
    if not files:
        raise DiagramError(
            f"no stacks in {synth_dir}/stacks/*/cdk.tf.json: run `make synth` first (or pass --synth-dir)"
        )
    stacks = {}
    for file in files:
        try:
            stacks[file.parent.name] = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DiagramError(f"cannot read {file}: {error}") from error
    return stacks


def resources_of(stack: str, document: Mapping[str, Any]) -> list[Resource]:
    found = []
    for rtype, by_name in sorted(document.get("resource", {}).items()):
        for name, body in sorted(by_name.items()):
            path = body.get("//", {}).get("metadata", {}).get("path") or ""
            found.append(Resource(stack, rtype, name, path, body))
    return found


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


def _api_phrases(node: list[Resource], bodies: Bodies) -> list[str]:
    phrases = []
    for api in bodies.get("aws_api_gateway_rest_api", []):
        types = "/".join(api.get("endpoint_configuration", {}).get("types", []))
        phrases.append(f"{api.get('name', 'REST API')}" + (f" ({types.lower()})" if types else ""))
    methods = sorted((r for r in node if r.rtype == "aws_api_gateway_method"), key=lambda r: r.name)
    for route, method in zip(_routes(node), methods):
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
    for stage in bodies.get("aws_api_gateway_stage", []):
        cert = " + client certificate" if stage.get("client_certificate_id") else ""
        phrases.append(f"stage {stage.get('stage_name', '?')}{cert}")
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
    phrases = [f"key {key.get('name', '')}".strip() for key in bodies.get("aws_api_gateway_api_key", [])]
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
        phrases.append(_count("execution role", roles) + (" + policy" if "aws_iam_role_policy" in bodies else ""))
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
        ),
        _api_phrases,
    ),
    (("aws_api_gateway_usage_plan",), _usage_plan_phrases),
    (("aws_api_gateway_api_key", "aws_api_gateway_usage_plan_key"), _api_key_phrases),
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


# Edge labels, by (referring type, referred type); the first rule that matches a node pair names its edge.
# Edges labelled as in _NON_RANKING hang a node off another rather than continuing the request flow, so they
# do not add a column to the left-to-right layout.
_NON_RANKING = frozenset({"throttles / quotas"})
_EDGE_LABELS = (
    (("aws_api_gateway_integration", "aws_lambda_function"), "invokes"),
    (("aws_secretsmanager_secret", "aws_api_gateway_usage_plan"), "attaches keys to"),
    (("aws_iam_role_policy", "aws_api_gateway_usage_plan"), "attaches keys to"),
    (("aws_api_gateway_usage_plan_key", "aws_api_gateway_usage_plan"), "attaches key to"),
    (("aws_lambda_function", "aws_ssm_parameter"), "reads/writes key"),
    (("aws_iam_role_policy", "aws_ssm_parameter"), "reads/writes key"),
    (("aws_ssm_parameter", "aws_api_gateway_api_key"), "stores key value"),
    (("aws_api_gateway_usage_plan", "aws_api_gateway_stage"), "throttles / quotas"),
    (("aws_api_gateway_stage", "aws_cloudwatch_log_group"), "access logs"),
    (("aws_api_gateway_authorizer", "aws_lambda_function"), "authorizes via"),
)


def edge_label(pairs: set[tuple[str, str]]) -> str:
    return next((label for pair, label in _EDGE_LABELS if pair in pairs), "")


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

    pairs: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    by_stack: dict[str, list[Resource]] = defaultdict(list)
    for resource in all_resources:
        by_stack[resource.stack].append(resource)
    for stack, held in by_stack.items():
        addresses = {resource.address: resource for resource in held}
        for resource in held:
            for address in references(resource.body, addresses):
                target = addresses[address]
                source_node, target_node = node_of[resource.key], node_of[target.key]
                if source_node != target_node:
                    pairs[(source_node, target_node)].add((resource.rtype, target.rtype))
    edges = []
    for (source, target), types in pairs.items():
        label = edge_label(types)
        edges.append(Edge(source, target, label, ranks=label not in _NON_RANKING))

    api_nodes = sorted({node_of[r.key] for r in all_resources if r.rtype == "aws_api_gateway_rest_api"})
    external = []
    if api_nodes:
        external.append(Node(CLIENTS, "", "", "Clients", ("HTTPS, header x-api-key",), ()))
        edges.extend(Edge(CLIENTS, api_node, "\n".join(_routes(members[api_node]))) for api_node in api_nodes)

    for stack in sorted(stacks):
        backend = stacks[stack].get("terraform", {}).get("backend", {}).get("s3")
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
    services = [stack for stack in stacks if not stack.endswith("-remote-state")] or stacks
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
