"""Export the public `POST /keys` API as an OpenAPI 3.0.3 document: `python -m tools.openapi [--out FILE]`.

Everything about the wire contract comes from `constructs_lib.api_contract`, the module the API Gateway
construct is built from: the path, the method, the request model (a JSON Schema draft-04 document, which
is turned into an OpenAPI 3.0 Schema Object by dropping `$schema`), the success status and the error
statuses with their descriptions. What the contract module does not hold is spelled out here: the success
body the Lambda returns (seven strings) and the `{"message": ...}` error body, which API Gateway's own
rejections (request validation, missing API key) use as well.

The output is deterministic (sorted keys, 2-space indent, trailing newline) so `docs/openapi.json` can be
committed and checked: `--check` exits 1 when the file differs from what would be written.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from constructs_lib import api_contract
from tools.paths import PROJECT_ROOT

DEFAULT_OUT = PROJECT_ROOT / "docs" / "openapi.json"
OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.1.0"  # major: an incompatible change of api_contract; minor: an addition (1.1: client_token, 429, 503)
SECURITY_SCHEME = "apiKey"
API_KEY_HEADER = "x-api-key"

REQUEST_SCHEMA_NAME = "CreateKeyRequest"
RESPONSE_SCHEMA_NAME = "CreateKeyResponse"
ERROR_SCHEMA_NAME = "Error"
SUCCESS_DESCRIPTION = "The key and its alias were created."
SUCCESS_FIELDS = {
    "KeyId": "ID of the new KMS key",
    "KeyArn": "ARN of the new KMS key",
    "AliasName": "Alias pointing at the key (`alias/...`)",
    "Region": "Region the key was created in",
    "Account": "Account the key was created in",
    "KeyUsage": "Usage of the key",
    "KeySpec": "Key spec (the default for the usage when the request had none)",
}
REPLAYED_DESCRIPTION = (
    "true when the request repeated an earlier one's `client_token`: the key is the one that request created"
)

# Draft-04 keywords an OpenAPI 3.0 Schema Object accepts with the same meaning (OpenAPI 3.0.3, 4.7.24).
_OPENAPI_30_KEYWORDS = frozenset(
    {
        "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
        "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties",
        "required", "enum", "type", "allOf", "oneOf", "anyOf", "not", "items", "properties",
        "additionalProperties", "description", "format", "default",
    }
)  # fmt: skip
_SUBSCHEMA_MAPS = ("properties",)
_SUBSCHEMA_LISTS = ("allOf", "oneOf", "anyOf")
_SUBSCHEMAS = ("not", "items", "additionalProperties")


class SchemaConversionError(ValueError):
    """The request model uses JSON Schema that OpenAPI 3.0 cannot express."""


def to_openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A draft-04 JSON Schema as an OpenAPI 3.0 Schema Object: `$schema` dropped, the rest kept as is.

    Raises SchemaConversionError for anything OpenAPI 3.0 reads differently or not at all (`$ref` to
    `definitions`, `patternProperties`, a list as `type`, ...), so the document can never silently describe
    a looser or stricter request than the API Gateway model validates.
    """
    converted = copy.deepcopy(schema)
    converted.pop("$schema", None)
    _check_keywords(converted, "#")
    return converted


def _check_keywords(schema: Any, where: str) -> None:
    if isinstance(schema, bool):
        if where.endswith("/additionalProperties"):
            return
        raise SchemaConversionError(f"{where}: boolean schemas are not OpenAPI 3.0")
    if not isinstance(schema, dict):
        raise SchemaConversionError(f"{where}: a schema must be an object")
    unsupported = sorted(set(schema) - _OPENAPI_30_KEYWORDS)
    if unsupported:
        raise SchemaConversionError(f"{where}: not expressible in OpenAPI 3.0: {', '.join(unsupported)}")
    if isinstance(schema.get("type"), list):
        raise SchemaConversionError(f"{where}: `type` must be a single type in OpenAPI 3.0")
    for key in _SUBSCHEMA_MAPS:
        for name, child in schema.get(key, {}).items():
            _check_keywords(child, f"{where}/{key}/{name}")
    for key in _SUBSCHEMA_LISTS:
        for index, child in enumerate(schema.get(key, [])):
            _check_keywords(child, f"{where}/{key}/{index}")
    for key in _SUBSCHEMAS:
        if key in schema:
            if isinstance(schema[key], list):
                raise SchemaConversionError(f"{where}/{key}: a list is not OpenAPI 3.0")
            _check_keywords(schema[key], f"{where}/{key}")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the API, from `api_contract`."""
    content_type = api_contract.CONTENT_TYPE
    responses: dict[str, Any] = {
        api_contract.SUCCESS_STATUS: {
            "description": SUCCESS_DESCRIPTION,
            "content": {content_type: {"schema": _ref(RESPONSE_SCHEMA_NAME)}},
        }
    }
    for error in api_contract.ERROR_RESPONSES:
        responses[error.status_code] = {
            "description": error.description,
            "content": {content_type: {"schema": _ref(ERROR_SCHEMA_NAME)}},
        }
        if error.headers:
            responses[error.status_code]["headers"] = {
                name: {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
                for name, _ in error.headers
            }
    request_schema = to_openapi_schema(api_contract.REQUEST_MODEL_SCHEMA)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "KMS key generator",
            "version": API_VERSION,
            "description": (
                "Creates a KMS key and its alias in an allowed account and region. Every request needs the "
                f"service's API key in the `{API_KEY_HEADER}` header."
            ),
        },
        "servers": [
            {
                "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "The deployed stage (Terraform outputs `rest_api_id`, `region`, `stage_name`)",
                "variables": {
                    "restApiId": {"default": "restApiId", "description": "ID of the REST API"},
                    "region": {"default": "us-east-1", "description": "AWS region of the service"},
                    "stage": {"default": "v1", "description": "Stage name"},
                },
            }
        ],
        "paths": {
            f"/{api_contract.RESOURCE_PATH}": {
                api_contract.HTTP_METHOD.lower(): {
                    "operationId": "createKey",
                    "summary": "Create a KMS key and its alias",
                    "security": [{SECURITY_SCHEME: []}],
                    "requestBody": {
                        "required": True,
                        "content": {content_type: {"schema": _ref(request_schema.get("title", REQUEST_SCHEMA_NAME))}},
                    },
                    "responses": responses,
                }
            }
        },
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": API_KEY_HEADER,
                    "description": "API key of a usage plan of the service",
                }
            },
            "schemas": {
                request_schema.get("title", REQUEST_SCHEMA_NAME): request_schema,
                RESPONSE_SCHEMA_NAME: {
                    "title": RESPONSE_SCHEMA_NAME,
                    "type": "object",
                    "required": [*SUCCESS_FIELDS, "Replayed"],
                    "properties": {
                        **{
                            field: {"type": "string", "description": description}
                            for field, description in SUCCESS_FIELDS.items()
                        },
                        "Replayed": {"type": "boolean", "description": REPLAYED_DESCRIPTION},
                    },
                },
                ERROR_SCHEMA_NAME: {
                    "title": ERROR_SCHEMA_NAME,
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string", "description": "What went wrong"}},
                },
            },
        },
    }


def render(document: dict[str, Any] | None = None) -> str:
    """Deterministic text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(build_document() if document is None else document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="file to write, or - for stdout (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if args.check:
        current = out.read_text() if out.is_file() else None
        if current != text:
            print(f"{out} is out of date: run `python -m tools.openapi --out {args.out}`", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
