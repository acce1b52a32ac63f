"""tools.diagram: the architecture picture is a handful of concern nodes built from the synth, not noise.

Pure: everything here reads the session's synth output and checks the model and the DOT text; no Graphviz.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.support.synth import PROJECT_ROOT, SERVICE_STACK, STATE_STACK
from tools import diagram as tool

API = f"{SERVICE_STACK}/api"
USAGE_PLAN = f"{SERVICE_STACK}/usage-plan-default"
ACCESS_LOGS = f"{SERVICE_STACK}/access-logs"
LAMBDA = f"{SERVICE_STACK}/key-generator"
ROTATION = f"{SERVICE_STACK}/api-key-rotation"
PARAMETER = f"{SERVICE_STACK}/api-key-parameter"
BACKEND = f"{STATE_STACK}/remote-backend"
WAF = f"{SERVICE_STACK}/waf"
MONITORING = f"{SERVICE_STACK}/monitoring"
OPS_KEY = f"{SERVICE_STACK}/operations-key"
SERVICE = tool.STACK_PREFIX + SERVICE_STACK

_DOT_NODE = re.compile(r'^\s*"([^"]+)" \[label=', re.MULTILINE)
_DOT_EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"', re.MULTILINE)
_DOT_CLUSTER = re.compile(r'^\s*subgraph "([^"]+)" \{', re.MULTILINE)


@pytest.fixture(scope="module")
def stacks(synth) -> dict[str, dict[str, Any]]:
    return tool.load_stacks(synth.outdir)


@pytest.fixture(scope="module")
def model(stacks) -> tool.Diagram:
    return tool.build_diagram(stacks)


@pytest.fixture(scope="module")
def dot(model) -> str:
    return tool.render_dot(model)


def edges(model: tool.Diagram) -> dict[tuple[str, str], str]:
    return {(edge.source, edge.target): edge.label for edge in model.edges}


# --- nodes and clusters -----------------------------------------------------------------------------------


def test_one_node_per_concern_not_per_resource(model, dot, service, state):
    assert {node.id for node in model.nodes} == {
        tool.CLIENTS,
        API,
        USAGE_PLAN,
        ACCESS_LOGS,
        LAMBDA,
        ROTATION,
        PARAMETER,
        BACKEND,
        WAF,
        MONITORING,
        OPS_KEY,
    }
    resource_count = sum(len(by_name) for stack in (service, state) for by_name in stack["resource"].values())
    assert resource_count > 60 and len(model.nodes) <= 14
    declared = _DOT_NODE.findall(dot)
    assert sorted(declared) == sorted(node.id for node in model.nodes)  # each node drawn once, nothing else
    assert not [node for node in declared if "aws_" in node]


def test_clusters_group_nodes_by_concern(model, dot):
    clusters = {cluster.id: cluster for cluster in model.clusters}
    concerns = ("edge", "api", "lambda", "rotation", "operations")
    assert set(clusters) == {
        f"cluster_{SERVICE_STACK}",
        *(f"cluster_{SERVICE_STACK}_{concern}" for concern in concerns),
        f"cluster_{STATE_STACK}",
    }
    assert set(_DOT_CLUSTER.findall(dot)) == set(clusters)
    assert clusters[f"cluster_{SERVICE_STACK}"].children == tuple(
        f"cluster_{SERVICE_STACK}_{concern}" for concern in concerns
    )
    members = {cluster.group: set(cluster.nodes) for cluster in model.clusters if cluster.nodes}
    assert members == {
        "edge": {WAF},
        "api": {API, USAGE_PLAN},
        "lambda": {LAMBDA},
        "rotation": {ROTATION, PARAMETER},
        "operations": {MONITORING, ACCESS_LOGS, OPS_KEY},
        "state": {BACKEND},
    }
    assert not [node for node in model.nodes if node.group == "other"]  # every construct has its concern
    assert clusters[f"cluster_{SERVICE_STACK}_edge"].label == "Edge & protection"
    assert clusters[f"cluster_{SERVICE_STACK}_operations"].label == "Operations & observability"
    assert "Terraform state" in clusters[f"cluster_{STATE_STACK}"].label
    assert model.node(tool.CLIENTS).external and not model.node(tool.CLIENTS).members


def test_edge_and_operations_concerns_are_one_column_each(dot):
    for concern, nodes in (("edge", [WAF]), ("operations", [ACCESS_LOGS, MONITORING, OPS_KEY])):
        block = dot.split(f'subgraph "cluster_{SERVICE_STACK}_{concern}" {{', 1)[1].split("\n    }", 1)[0]
        if len(nodes) > 1:
            assert "{rank=same; " + "; ".join(f'"{node}"' for node in nodes) + ";}" in block
        else:
            assert "rank=same" not in block  # nothing to line up
    assert dot.count("rank=same") == 1


def test_labels_summarize_what_a_node_holds(model):
    api = "\n".join(model.node(API).lines)
    for phrase in (
        "POST /keys (API key required)",
        "stage v1 + client certificate",
        "responses 201/400/403/409/429/500/503",
    ):
        assert phrase in api
    assert "${" not in api
    assert model.node(API).title == "REST API"
    assert "2 req/s (burst 4)" in model.node(USAGE_PLAN).lines[0]
    assert "function kms-key-generator" in model.node(LAMBDA).lines
    assert "secret kms-key-generator/api-key" in model.node(ROTATION).lines
    assert "SecureString /APIGateway/APIKeys/kms-key-generator" in model.node(PARAMETER).lines
    assert "S3 bucket kms-key-generator-tfstate" in model.node(BACKEND).lines
    assert "DynamoDB lock table kms-key-generator-tflock" in model.node(BACKEND).lines
    assert "owner enforced, bucket policy" in model.node(BACKEND).lines
    assert "stage method settings: ERROR logs, metrics, 5 req/s (burst 10)" in model.node(API).lines


def test_labels_of_the_edge_and_operations_concerns(model):
    assert model.node(WAF).title == "Web application firewall"
    assert model.node(WAF).lines == (
        "WAFv2 web ACL (managed rules + rate limit)",
        "4 managed rule groups \u00b7 1000 req/5 min per IP",
        "attached to the stage",
        "request logging (x-api-key, authorization redacted)",
        "log group (never expires)",
    )
    assert model.node(MONITORING).lines == (
        "6 alarms \u2192 SNS topic (encrypted)",
        "3 log metric filters",
        "dashboard",
    )
    assert model.node(ACCESS_LOGS).lines == (
        "API Gateway account (CloudWatch role)",
        "IAM role + policy",  # not an "execution role": there is no function here
        "log group (never expires)",
    )
    assert model.node(OPS_KEY).title == "Operations key"
    assert model.node(OPS_KEY).lines[0] == "KMS key alias/kms-key-generator-ops"
    type_names = ("wafv2 ", "sns ", "sqs ", "cloudwatch ", "api gateway ", "s3 ")  # fallbacks: no phrase for a type
    assert not [line for node in model.nodes for line in node.lines if line.startswith(type_names)]


# --- edges ------------------------------------------------------------------------------------------------


def test_edges_between_concerns(model, dot):
    found = edges(model)
    assert found == {
        (tool.CLIENTS, API): "POST /keys",
        (WAF, API): "filters requests to",
        (API, LAMBDA): "invokes",
        (API, ACCESS_LOGS): "access logs",
        (USAGE_PLAN, API): "throttles / quotas",
        (ROTATION, USAGE_PLAN): "attaches keys to",
        (ROTATION, PARAMETER): "reads/writes key",
        (LAMBDA, ROTATION): "knows operator keys by",
        (MONITORING, API): "alarms on",
        (MONITORING, LAMBDA): "alarms on",
        (MONITORING, ROTATION): "alarms on",
        (SERVICE, BACKEND): "Terraform state\n(S3 backend, DynamoDB lock + lock file)",
    }
    drawn = set(_DOT_EDGE.findall(dot))
    assert {pair for pair in found if not pair[0].startswith(tool.STACK_PREFIX)} <= drawn
    assert len(_DOT_EDGE.findall(dot)) == len(found)  # de-duplicated: one line per node pair


def test_side_relations_do_not_rank_and_watching_edges_are_dotted(model, dot):
    ranking = {(edge.source, edge.target) for edge in model.edges if edge.ranks}
    assert ranking == {
        (tool.CLIENTS, API),
        (WAF, API),
        (API, LAMBDA),
        (API, ACCESS_LOGS),
        (ROTATION, PARAMETER),
    }
    for target in (API, LAMBDA, ROTATION):
        (line,) = [line for line in dot.splitlines() if f'"{MONITORING}" -> "{target}"' in line]
        assert 'xlabel="alarms on"' in line and "constraint=false" in line and "style=dotted" in line
    (line,) = [line for line in dot.splitlines() if f'"{API}" -> "{LAMBDA}"' in line]
    assert "style" not in line and "constraint" not in line


def test_operations_key_gets_no_edges_its_label_says_what_it_encrypts(model, stacks):
    """Deliberate omission: the shared operations key would get an edge from nearly every node."""
    held = tool.resources_of(SERVICE_STACK, stacks[SERVICE_STACK])
    addresses = {resource.address for resource in held}
    (key,) = [r.address for r in held if r.rtype == "aws_kms_key" and tool.construct_of(r) == "operations-key"]
    users = {tool.construct_of(r) for r in held if key in tool.references(r.body, addresses)} - {"operations-key"}
    assert users == {"api", "access-logs", "key-generator", "api-key-rotation", "waf", "monitoring"}
    assert not [edge for edge in model.edges if OPS_KEY in (edge.source, edge.target)]
    assert model.node(OPS_KEY).lines[1:] == ("encrypts 5 log groups, 2 Lambda environments", "SNS topic")
    # Keys sharing a node with what they protect are not folded: the rotation still reads/writes the parameter.
    assert (ROTATION, PARAMETER) in edges(model)


def test_edge_labels_match_rules_with_any_type():
    assert tool.edge_label({("aws_cloudwatch_metric_alarm", "aws_sns_topic")}) == "alarms on"
    assert tool.edge_label({("aws_cloudwatch_dashboard", "aws_lambda_function")}) == "on dashboard"
    assert tool.edge_label({("aws_sns_topic", "aws_kms_key")}) == "encrypts with"
    both = {("aws_cloudwatch_dashboard", "aws_lambda_function"), ("aws_cloudwatch_metric_alarm", "aws_lambda_function")}
    assert tool.edge_label(both) == "alarms on"  # the first rule wins, whatever the set's order
    assert tool.edge_label({("aws_lambda_function", "aws_lambda_layer_version")}) == ""


def test_state_edge_leaves_the_service_stack_cluster(dot):
    (line,) = [line for line in dot.splitlines() if f'-> "{BACKEND}"' in line]
    assert f'ltail="cluster_{SERVICE_STACK}"' in line
    assert re.match(rf'\s*"{SERVICE_STACK}/', line)  # anchored on a node of the service stack


def test_references_found_in_jsonencode_and_depends_on():
    addresses = {
        "aws_secretsmanager_secret.s",
        "aws_ssm_parameter.p-1",
        "aws_cloudwatch_log_group.logs",
        "aws_iam_role.r",
    }
    body = {
        "//": {"metadata": {"path": "stack/x/aws_iam_role.r"}},
        "policy": '${jsonencode({"Resource" = aws_secretsmanager_secret.s.arn, '
        '"Other" = ["arn:${data.aws_partition.partition.partition}:ssm:::${aws_ssm_parameter.p-1.name}"]})}',
        "principal": "secretsmanager.amazonaws.com",
        "plain": "aws_iam_role.r is only text outside an expression",
        "depends_on": ["aws_cloudwatch_log_group.logs"],
    }
    assert tool.references(body, addresses) == {
        "aws_secretsmanager_secret.s",
        "aws_ssm_parameter.p-1",
        "aws_cloudwatch_log_group.logs",
    }


# --- completeness and determinism -------------------------------------------------------------------------


def test_every_resource_is_in_exactly_one_node(model, service, state):
    expected = {
        f"{stack_name}:{rtype}.{name}"
        for stack_name, stack in ((SERVICE_STACK, service), (STATE_STACK, state))
        for rtype, by_name in stack["resource"].items()
        for name in by_name
    }
    held = [key for node in model.nodes for key in node.members]
    assert len(held) == len(set(held))
    assert set(held) == expected == set(model.resources)
    assert model.unaccounted == ()


def test_dot_is_deterministic(synth, dot):
    """Drawn again, and by the CLI in a process with another hash seed: the same DOT, so no set or dict order leaks
    into it. (That two synths of one commit are byte-identical is tests/synth/test_stacks.py's to prove.)"""
    again = tool.render_dot(tool.build_diagram(tool.load_stacks(synth.outdir)))
    printed = subprocess.run(
        [sys.executable, "-m", "tools.diagram", "--synth-dir", str(synth.outdir), "--dot-only"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ, PYTHONHASHSEED="1729"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert dot == again == printed


def test_static_key_variant_is_drawn_in_the_api_cluster(variant):
    model = tool.build_diagram(tool.load_stacks(variant.outdir))
    stack = variant.service_name
    key, parameter = f"{stack}/service-api-key", f"{stack}/api-key-parameter"
    general, unlimited = f"{stack}/usage-plan-general", f"{stack}/usage-plan-unlimited"
    api_cluster = model.cluster(f"cluster_{stack}_api")
    assert set(api_cluster.nodes) == {f"{stack}/api", key, general, unlimited, f"{stack}/tenants"}
    assert f"{stack}/token-authorizer" in model.cluster(f"cluster_{stack}_lambda").nodes
    # No WAF in this config, so no edge concern; alarms are off, the dashboard and metric filters stay.
    assert f"cluster_{stack}_edge" not in {cluster.id for cluster in model.clusters}
    assert set(model.cluster(f"cluster_{stack}_operations").nodes) == {
        f"{stack}/access-logs",
        f"{stack}/monitoring",
        f"{stack}/operations-key",
    }
    assert model.node(f"{stack}/monitoring").lines == ("3 log metric filters", "dashboard")
    assert model.node(f"{stack}/tenants").lines[:3] == (
        "key keys-variant-acme",
        "key keys-variant-globex",
        "key keys-variant-initech",
    )
    found = edges(model)
    assert found[(f"{stack}/api", f"{stack}/token-authorizer")] == "authorizes via"
    assert found[(key, general)] == "attaches key to"
    assert found[(parameter, key)] == "stores key value"
    assert (f"{stack}/api-key-rotation", general) not in found
    assert found[(tool.STACK_PREFIX + stack, f"{stack}-remote-state/remote-backend")].startswith("Terraform state")
    assert found[(f"{stack}/monitoring", f"{stack}/api")] == "on dashboard"
    assert found[(f"{stack}/monitoring", f"{stack}/key-generator")] == "metrics from logs"
    assert model.unaccounted == ()


def test_hardened_custom_domain_sits_in_front_of_the_api(hardened):
    model = tool.build_diagram(tool.load_stacks(hardened.outdir))
    stack = hardened.service_name
    api, domain, waf = f"{stack}/api", f"{stack}/custom-domain", f"{stack}/waf"
    assert set(model.cluster(f"cluster_{stack}_edge").nodes) == {domain, waf}
    assert model.node(domain).title == "Custom domain"
    assert model.node(domain).lines == (
        "keys.example.test (regional)",
        "TLS 1.2 custom domain + ACM certificate",
        "certificate validated (DNS)",
        "base path /v1 \u2192 stage",
        "Route 53 alias record + validation record",
    )
    found = edges(model)
    # The execute-api endpoint is disabled: clients reach the API only through the custom domain.
    assert found[(tool.CLIENTS, domain)] == "keys.example.test\nPOST /v1/keys"
    assert (tool.CLIENTS, api) not in found
    assert found[(domain, api)] == "routes to stage"
    assert found[(waf, api)] == "filters requests to"
    assert found[(f"{stack}/monitoring", f"{stack}/token-authorizer")] == "alarms on"
    assert "e-mail to 1 subscriber" in model.node(f"{stack}/monitoring").lines
    assert model.node(f"{stack}/operations-key").lines[1:] == (
        "encrypts 6 log groups, 3 Lambda environments",
        "SNS topic",
    )
    assert "Lambda request authorizer (cached 3 s)" in model.node(api).lines
    assert not [edge for edge in model.edges if f"{stack}/operations-key" in (edge.source, edge.target)]
    assert not [node for node in model.nodes if node.group == "other"]
    assert model.unaccounted == ()


# --- the command ------------------------------------------------------------------------------------------


def test_dot_only_prints_the_dot(synth, dot, capsys):
    assert tool.main(["--synth-dir", str(synth.outdir), "--dot-only"]) == 0
    assert capsys.readouterr().out == dot


def test_missing_graphviz_says_how_to_install_it(synth, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tool.shutil, "which", lambda name: None)
    assert tool.main(["--synth-dir", str(synth.outdir), "--out", str(tmp_path / "a.png")]) == 1
    error = capsys.readouterr().err
    assert "Graphviz" in error and "apt-get install graphviz" in error
    assert not (tmp_path / "a.png").exists()


def test_missing_synth_says_to_synthesize(tmp_path, capsys):
    assert tool.main(["--synth-dir", str(tmp_path), "--dot-only"]) == 1
    assert "make synth" in capsys.readouterr().err


def test_committed_picture_is_a_png():
    assert (PROJECT_ROOT / "docs" / "architecture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
