"""tools.openapi: the exported OpenAPI document is valid, matches the deployed contract and is kept in sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import OpenAPIV30SpecValidator

from constructs_lib import api_contract
from tests.support.synth import PROJECT_ROOT, only
from tools import openapi

DOCUMENT_PATH = PROJECT_ROOT / "docs" / "openapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build_document()


@pytest.fixture(scope="module")
def operation(document) -> dict[str, Any]:
    return document["paths"]["/keys"]["post"]


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node["$ref"]
    assert ref.startswith("#/components/schemas/")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


def schema_of(document: dict[str, Any], response_or_body: dict[str, Any]) -> dict[str, Any]:
    return resolve(document, response_or_body["content"]["application/json"]["schema"])


def test_document_is_valid_openapi_3_0(document):
    # openapi-spec-validator ships with moto[server] (pinned in constraints.txt): the JSON Schema of
    # OpenAPI 3.0 plus the semantic checks (refs resolve, path parameters, security schemes exist...).
    assert document["openapi"] == "3.0.3"
    errors = [error.message for error in OpenAPIV30SpecValidator(document).iter_errors()]
    assert errors == []


def test_committed_document_is_in_sync():
    assert DOCUMENT_PATH.read_text() == openapi.render(), "run `python -m tools.openapi` and commit docs/openapi.json"


def test_rendering_is_deterministic_and_formatted(document):
    text = openapi.render()
    assert text == openapi.render(document)
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_request_schema_is_the_deployed_request_model_without_schema_keyword(document, operation, service):
    model = json.loads(only(service, "aws_api_gateway_model")["schema"])
    assert model.pop("$schema") == "http://json-schema.org/draft-04/schema#"
    assert operation["requestBody"]["required"] is True
    assert schema_of(document, operation["requestBody"]) == model


def test_request_schema_still_validates_like_the_model(document, operation):
    validator = OAS30Validator(schema_of(document, operation["requestBody"]))
    good = {
        "account": "123456789012",
        "region": "eu-west-1",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": "alias/team-a",
        "key_description": "Team A data key",
    }
    assert validator.is_valid(good)
    assert validator.is_valid(dict(good, key_spec="RSA_2048"))
    assert not validator.is_valid(dict(good, account="12345"))
    assert not validator.is_valid(dict(good, extra="field"))
    assert not validator.is_valid({key: value for key, value in good.items() if key != "key_alias"})


def test_security_is_an_api_key_in_the_x_api_key_header(document, operation):
    assert operation["security"] == [{"apiKey": []}]
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "x-api-key")


def test_path_and_method_come_from_the_contract(document):
    assert list(document["paths"]) == [f"/{api_contract.RESOURCE_PATH}"]
    assert list(document["paths"]["/keys"]) == [api_contract.HTTP_METHOD.lower()]


def test_responses_cover_success_and_every_contract_error(document, operation):
    responses = operation["responses"]
    assert sorted(responses) == ["201", "400", "403", "409", "429", "500", "503"]
    success = schema_of(document, responses[api_contract.SUCCESS_STATUS])
    fields = ["KeyId", "KeyArn", "AliasName", "Region", "Account", "KeyUsage", "KeySpec"]
    assert success["required"] == [*fields, "Replayed"]
    assert {name: prop["type"] for name, prop in success["properties"].items()} == {
        **dict.fromkeys(fields, "string"),
        "Replayed": "boolean",
    }
    assert responses["429"]["headers"] == {
        "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
    }
    for error in api_contract.ERROR_RESPONSES:
        response = responses[error.status_code]
        assert response["description"] == error.description
        assert schema_of(document, response) == {
            "title": "Error",
            "type": "object",
            "required": ["message"],
            "properties": {"message": {"type": "string", "description": "What went wrong"}},
        }


def test_server_url_is_templated(document):
    (server,) = document["servers"]
    assert server["url"] == "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}"
    assert sorted(server["variables"]) == ["region", "restApiId", "stage"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "patternProperties": {"^x": {}}}, "#: not expressible in OpenAPI 3.0: patternProperties"),
        ({"properties": {"a": {"type": ["string", "null"]}}}, "#/properties/a: `type` must be a single type"),
        ({"definitions": {}, "properties": {"a": {"$ref": "#/definitions/x"}}}, "#: not expressible .*definitions"),
        ({"items": [{"type": "string"}]}, "#/items: a list is not OpenAPI 3.0"),
    ],
)
def test_json_schema_openapi_cannot_express_is_refused(schema, message):
    with pytest.raises(openapi.SchemaConversionError, match=message):
        openapi.to_openapi_schema(dict(schema, **{"$schema": "http://json-schema.org/draft-04/schema#"}))


def test_conversion_only_drops_schema_keyword():
    converted = openapi.to_openapi_schema(api_contract.REQUEST_MODEL_SCHEMA)
    assert "$schema" in api_contract.REQUEST_MODEL_SCHEMA  # the contract itself is untouched
    assert converted == {key: value for key, value in api_contract.REQUEST_MODEL_SCHEMA.items() if key != "$schema"}


def test_cli_writes_and_checks(tmp_path: Path):
    out = tmp_path / "nested" / "openapi.json"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.openapi", *args], cwd=PROJECT_ROOT, capture_output=True, text=True
        )

    assert run("--out", str(out), "--check").returncode == 1
    assert run("--out", str(out)).returncode == 0
    assert out.read_text() == openapi.render()
    assert run("--out", str(out), "--check").returncode == 0
    out.write_text(out.read_text().replace("3.0.3", "3.0.2"))
    stale = run("--out", str(out), "--check")
    assert stale.returncode == 1 and "out of date" in stale.stderr
    assert run("--out", "-").stdout == openapi.render()
