"""tools.diagram: the architecture picture is a handful of concern nodes built from the synth, not noise.

Pure: everything here reads the session's synth output and checks the model and the DOT text; no Graphviz.
"""

from __future__ import annotations

import re
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
        tool.CLIENTS, API, USAGE_PLAN, ACCESS_LOGS, LAMBDA, ROTATION, PARAMETER, BACKEND
    }
    resource_count = sum(len(by_name) for stack in (service, state) for by_name in stack["resource"].values())
    assert resource_count > 40 and len(model.nodes) <= 12
    declared = _DOT_NODE.findall(dot)
    assert sorted(declared) == sorted(node.id for node in model.nodes)  # each node drawn once, nothing else
    assert not [node for node in declared if "aws_" in node]


def test_clusters_group_nodes_by_concern(model, dot):
    clusters = {cluster.id: cluster for cluster in model.clusters}
    assert set(clusters) == {
        f"cluster_{SERVICE_STACK}",
        f"cluster_{SERVICE_STACK}_api",
        f"cluster_{SERVICE_STACK}_lambda",
        f"cluster_{SERVICE_STACK}_rotation",
        f"cluster_{STATE_STACK}",
    }
    assert set(_DOT_CLUSTER.findall(dot)) == set(clusters)
    assert clusters[f"cluster_{SERVICE_STACK}"].children == (
        f"cluster_{SERVICE_STACK}_api",
        f"cluster_{SERVICE_STACK}_lambda",
        f"cluster_{SERVICE_STACK}_rotation",
    )
    members = {cluster.group: set(cluster.nodes) for cluster in model.clusters if cluster.nodes}
    assert members == {
        "api": {API, USAGE_PLAN, ACCESS_LOGS},
        "lambda": {LAMBDA},
        "rotation": {ROTATION, PARAMETER},
        "state": {BACKEND},
    }
    assert "Terraform state" in clusters[f"cluster_{STATE_STACK}"].label
    assert model.node(tool.CLIENTS).external and not model.node(tool.CLIENTS).members


def test_labels_summarize_what_a_node_holds(model):
    api = "\n".join(model.node(API).lines)
    for phrase in ("POST /keys (API key required)", "stage v1 + client certificate", "responses 201/400/403/409/500"):
        assert phrase in api
    assert "${" not in api
    assert model.node(API).title == "REST API"
    assert "10 req/s (burst 20)" in model.node(USAGE_PLAN).lines[0]
    assert "function kms-key-generator" in model.node(LAMBDA).lines
    assert "secret kms-key-generator/api-key" in model.node(ROTATION).lines
    assert "SecureString /APIGateway/APIKeys/kms-key-generator" in model.node(PARAMETER).lines
    assert "S3 bucket kms-key-generator-tfstate" in model.node(BACKEND).lines
    assert "DynamoDB lock table kms-key-generator-tflock" in model.node(BACKEND).lines


# --- edges ------------------------------------------------------------------------------------------------


def test_edges_between_concerns(model, dot):
    found = edges(model)
    assert found == {
        (tool.CLIENTS, API): "POST /keys",
        (API, LAMBDA): "invokes",
        (API, ACCESS_LOGS): "access logs",
        (USAGE_PLAN, API): "throttles / quotas",
        (ROTATION, USAGE_PLAN): "attaches keys to",
        (ROTATION, PARAMETER): "reads/writes key",
        (SERVICE, BACKEND): "Terraform state\n(S3 backend, DynamoDB lock + lock file)",
    }
    drawn = set(_DOT_EDGE.findall(dot))
    assert {pair for pair in found if not pair[0].startswith(tool.STACK_PREFIX)} <= drawn
    assert len(_DOT_EDGE.findall(dot)) == len(found)  # de-duplicated: one line per node pair


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


def test_dot_is_deterministic(synths, dot):
    again = tool.render_dot(tool.build_diagram(tool.load_stacks(synths["default"].outdir)))
    other_synth = tool.render_dot(tool.build_diagram(tool.load_stacks(synths["default_again"].outdir)))
    assert dot == again == other_synth


def test_static_key_variant_is_drawn_in_the_api_cluster(variant):
    model = tool.build_diagram(tool.load_stacks(variant.outdir))
    stack = variant.service_name
    key, parameter = f"{stack}/service-api-key", f"{stack}/api-key-parameter"
    general, unlimited = f"{stack}/usage-plan-general", f"{stack}/usage-plan-unlimited"
    api_cluster = model.cluster(f"cluster_{stack}_api")
    assert set(api_cluster.nodes) == {
        f"{stack}/api", key, general, unlimited, f"{stack}/tenants", f"{stack}/access-logs"
    }
    assert f"{stack}/token-authorizer" in model.cluster(f"cluster_{stack}_lambda").nodes
    found = edges(model)
    assert found[(f"{stack}/api", f"{stack}/token-authorizer")] == "authorizes via"
    assert found[(key, general)] == "attaches key to"
    assert found[(parameter, key)] == "stores key value"
    assert (f"{stack}/api-key-rotation", general) not in found
    assert found[(tool.STACK_PREFIX + stack, f"{stack}-remote-state/remote-backend")].startswith("Terraform state")
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
