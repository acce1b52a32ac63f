"""Secrets guard, synth side: no secret value can be written into `cdktf.out/`, and every output that carries
one is sensitive. (tests/e2e/test_hardened.py checks the live values against outputs, files and logs.)

A secret is an API key value, a Secrets Manager secret string or a token. The synthesized JSON may only
*refer* to them (a resource attribute or the sensitive variable), never hold them.
"""

from __future__ import annotations

import json
import re

import pytest

from constructs_lib.stacks.service import PENDING_FIRST_ROTATION
from tests.support.synth import resources

CONFIGS = ["default", "variant", "hardened", "adopt"]
REFERENCE = re.compile(r"^\$\{.*\}$", re.DOTALL)
# Expressions that evaluate to a secret: key values, secret strings, the fixed-key variable.
SECRET_EXPRESSIONS = re.compile(
    r"aws_api_gateway_api_key\.[\w-]+(\[[^\]]*\])?\.value|\bkey\.value\b|secret_string|var\.tenant_api_key_values"
)
# Environment variable names that would hint at a secret in a function's configuration.
SECRET_ENV_NAMES = re.compile(r"(KEY_VALUE|SECRET_VALUE|PASSWORD|TOKEN)$")


@pytest.fixture(scope="module", params=CONFIGS)
def stack(request, synths) -> dict:
    return synths[request.param].service


def test_api_key_values_are_generated_by_aws_or_taken_from_the_sensitive_variable(stack):
    for name, key in resources(stack, "aws_api_gateway_api_key").items():
        value = key.get("value")
        assert value is None or (REFERENCE.match(value) and "var.tenant_api_key_values" in value), name
    variable = stack.get("variable", {}).get("tenant_api_key_values")
    if variable:
        assert variable["sensitive"] is True and variable["default"] == {}


def test_no_secret_string_or_parameter_value_is_a_literal(stack):
    for name, version in resources(stack, "aws_secretsmanager_secret_version").items():
        assert REFERENCE.match(version["secret_string"]), name
    for name, parameter in resources(stack, "aws_ssm_parameter").items():
        assert parameter["value"] == PENDING_FIRST_ROTATION or REFERENCE.match(parameter["value"]), name


def test_outputs_carrying_a_secret_are_sensitive(stack):
    for name, output in stack["output"].items():
        if SECRET_EXPRESSIONS.search(json.dumps(output["value"])):
            assert output.get("sensitive") is True, name
        else:
            assert "sensitive" not in output, name


def test_function_environments_hold_no_secrets(stack):
    for name, function in resources(stack, "aws_lambda_function").items():
        variables = function.get("environment", {}).get("variables", {})
        assert not [key for key in variables if SECRET_ENV_NAMES.search(key)], name
        for value in variables.values():
            assert not SECRET_EXPRESSIONS.search(value), name


def test_synth_output_holds_no_variable_values_or_credentials(synths):
    """Secret values reach Terraform at apply time (variables, AWS); synth never writes a tfvars file."""
    for config in CONFIGS:
        outdir = synths[config].outdir
        assert not list(outdir.rglob("*.tfvars*")), config
        for path in sorted(outdir.rglob("*.json")):
            text = path.read_text()
            for marker in ("PRIVATE KEY-----", "aws_secret_access_key", "AKIA"):
                assert marker not in text, (path, marker)
