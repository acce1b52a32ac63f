"""Public contract of the `POST /keys` API: the single source for the API Gateway
construct and the OpenAPI exporter, so the two can never disagree.

The method uses a non-proxy Lambda integration, which means API Gateway itself
turns the client's JSON into the Lambda event and the Lambda's outcome into an
HTTP response. The choices below are about doing that safely:

- Request model: a JSON Schema draft-04 document (the only draft API Gateway
  models accept) checked by a request validator before the Lambda runs, so
  malformed input is rejected with 400 at the edge.
- Request template: every client value is emitted with `$input.json(...)`, which
  serialises it as a JSON value. Quoting `$input.path(...)` text into the
  template (the original design) let a description such as
  `", "KeyUsage": "SIGN_VERIFY` rewrite other fields, and `$util.escapeJavaScript`
  is no fix because it turns `'` into `\\'`, which is not valid JSON. The
  optional KeySpec is guarded by a string comparison rather than a bare
  `#if($ref)`, because null/empty truthiness differs between Velocity engines.
- Error selection: API Gateway matches `selection_pattern` (a Java regex, whole
  string) against the Lambda's `errorMessage`. The handler prefixes client errors
  with `BadRequest: `, `Forbidden: ` or `Conflict: `, and the conditions a client
  should wait out with `TooManyRequests: ` (KMS or STS throttling that outlasted
  the handler's retries: 429 with `Retry-After`) or `ServiceUnavailable: ` (a KMS
  quota reached, or KMS failing: 503); everything else (bugs, timeouts) goes to a
  catch-all 500 that excludes those prefixes, so exactly one pattern matches any
  non-empty message.
- Retry-After: an integration response can only set headers from static values or
  the Lambda's result fields, and an error result has only `errorMessage`; so the
  header is the static `RETRY_AFTER_SECONDS`, the refill time of KMS's per-second
  request quotas. Clients add jitter (the request CLI does).
- Idempotency: the optional `client_token` is passed as `ClientToken`; the handler
  keeps it on the key it creates (tags) and answers a repeat with the same key
  (201, `"Replayed": true`). Patterns start with `(?s)`
  so multi-line messages match (Java and Python both accept the flag there).
- The catch-all uses `.+`, not `.*`: API Gateway also tests the patterns against
  a successful invocation's (empty) errorMessage, and `.*` would turn every
  success into a 500.
- The 500 body is fixed: Lambda and AWS error text may carry ARNs, account
  details or stack traces and must not reach clients (they stay in CloudWatch).
- Caller identity: `Caller` is `{"ApiKeyId", "TenantId"}` from API Gateway's
  `$context` (the API key that passed the usage plan; the tenant a token
  authorizer vouched for), `""` when absent, never from the body: the model's
  `additionalProperties: false` refuses a client `Caller` field before the
  template runs, and the template copies only named fields anyway. The handler
  resolves it to a tenant (or the operator) and refuses a request with none.
  Both values come from API Gateway (key ids) or the authorizer (tenant ids are
  settings-validated `[a-z0-9-]`), so they are quoted as they are.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

RESOURCE_PATH = "keys"
HTTP_METHOD = "POST"
CONTENT_TYPE = "application/json"

KEY_USAGES = ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT")

REQUEST_MODEL_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "CreateKeyRequest",
    "type": "object",
    "required": ["account", "region", "key_usage", "key_alias", "key_description"],
    "additionalProperties": False,
    "properties": {
        # maxLength too: in Java (and Python) regex `$` also matches before a final "\n".
        "account": {"type": "string", "pattern": "^[0-9]{12}$", "maxLength": 12},
        "region": {"type": "string", "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$"},
        "key_usage": {"type": "string", "enum": list(KEY_USAGES)},
        "key_alias": {
            "type": "string",
            "pattern": "^(alias/)?[A-Za-z0-9/_-]+$",
            "maxLength": 256,
        },
        "key_description": {"type": "string", "maxLength": 8192},
        "key_spec": {"type": "string", "pattern": "^[A-Z0-9_]+$"},
        "client_token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "maxLength": 64},
    },
}

REQUEST_TEMPLATE = """{
  "Account": $input.json('$.account'),
  "Region": $input.json('$.region'),
  "KeyUsage": $input.json('$.key_usage'),
  "KeyAlias": $input.json('$.key_alias'),
  "KeyDescription": $input.json('$.key_description'),
  "Caller": {"ApiKeyId": "$context.identity.apiKeyId", "TenantId": "$context.authorizer.tenant_id"}
#if("$!input.path('$.key_spec')" != "")
  ,"KeySpec": $input.json('$.key_spec')
#end
#if("$!input.path('$.client_token')" != "")
  ,"ClientToken": $input.json('$.client_token')
#end
}
"""

SUCCESS_STATUS = "201"
SUCCESS_RESPONSE_TEMPLATE = "$input.json('$')"

GENERIC_ERROR_MESSAGE = "Internal server error"
RETRY_AFTER_SECONDS = 1
_CLIENT_ERROR_TEMPLATE = """{"message": $input.json('$.errorMessage')}"""


@dataclass(frozen=True)
class ErrorResponse:
    """One error integration response, selected by matching the Lambda errorMessage."""

    status_code: str
    selection_pattern: str
    response_template: str
    description: str
    # Header name -> integration response mapping expression (a static value is quoted: "'1'").
    headers: tuple[tuple[str, str], ...] = ()


def _client_error(
    status_code: str, prefix: str, description: str, headers: tuple[tuple[str, str], ...] = ()
) -> tuple[str, ErrorResponse]:
    """An outcome a client can act on: the handler's `<prefix>: ` selects it, and its message is passed on."""
    return prefix, ErrorResponse(status_code, rf"(?s)^{prefix}: .*", _CLIENT_ERROR_TEMPLATE, description, headers)


_CLIENT_ERRORS = (
    _client_error("400", "BadRequest", "The request was rejected as invalid."),
    _client_error("403", "Forbidden", "The caller may not create keys for this account."),
    _client_error("409", "Conflict", "The alias is already in use."),
    _client_error(
        "429",
        "TooManyRequests",
        "KMS or STS throttled the request; retry after `Retry-After` seconds, with the same `client_token`.",
        headers=(("Retry-After", f"'{RETRY_AFTER_SECONDS}'"),),
    ),
    _client_error(
        "503",
        "ServiceUnavailable",
        "A KMS quota is reached (named with the account and Region) or KMS is failing; nothing was created.",
    ),
)
# The prefixes the handler gives the outcomes a client can act on; the catch-all 500 excludes exactly these.
CLIENT_ERROR_PREFIXES = tuple(prefix for prefix, _ in _CLIENT_ERRORS)

ERROR_RESPONSES: tuple[ErrorResponse, ...] = (
    *(response for _, response in _CLIENT_ERRORS),
    ErrorResponse(
        status_code="500",
        selection_pattern=rf"(?s)^(?!(?:{'|'.join(CLIENT_ERROR_PREFIXES)}): ).+",
        response_template=f'{{"message": "{GENERIC_ERROR_MESSAGE}"}}',
        description="Unexpected failure; details are only logged.",
    ),
)


def status_for_error(message: str) -> str:
    """The status API Gateway returns for a Lambda errorMessage.

    No match means the default (success) integration response, as for a successful
    invocation; more than one match is an ambiguous contract and raises ValueError.
    """
    statuses = [
        response.status_code for response in ERROR_RESPONSES if re.fullmatch(response.selection_pattern, message)
    ]
    if len(statuses) > 1:
        raise ValueError(f"Ambiguous selection patterns {statuses} for {message!r}")
    return statuses[0] if statuses else SUCCESS_STATUS


def deployment_hash(
    *,
    allowed_source_cidrs: tuple[str, ...],
    allowed_vpc_endpoint_ids: tuple[str, ...],
    authorizer_ttl: int | None,
    disable_execute_api_endpoint: bool,
) -> str:
    """SHA-256 of everything in the API's configuration that a deployment snapshots: this contract and
    the access settings. Optional parts enter only when set, so deployments without them keep their hash."""
    contract: dict[str, Any] = {
        "path": RESOURCE_PATH,
        "method": HTTP_METHOD,
        "request_template": REQUEST_TEMPLATE,
        "request_model": REQUEST_MODEL_SCHEMA,
        "success": [SUCCESS_STATUS, SUCCESS_RESPONSE_TEMPLATE],
        "errors": [
            [e.status_code, e.selection_pattern, e.response_template, *([dict(e.headers)] if e.headers else [])]
            for e in ERROR_RESPONSES
        ],
        "allowed_source_cidrs": list(allowed_source_cidrs),
        "allowed_vpc_endpoint_ids": list(allowed_vpc_endpoint_ids),
    }
    if authorizer_ttl is not None:
        contract["authorizer_ttl"] = authorizer_ttl
    if disable_execute_api_endpoint:  # the endpoint switch takes effect only with a new deployment
        contract["disable_execute_api_endpoint"] = True
    return hashlib.sha256(json.dumps(contract, sort_keys=True).encode()).hexdigest()
