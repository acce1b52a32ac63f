"""API Gateway REQUEST authorizer: a tenant's bearer token in, the tenant's API key out.

Contract (API Gateway relies on it; the API's key source is `AUTHORIZER`): the caller sends
`Authorization: Bearer <token>`. The token's SHA-256 (hex) is looked up in the DynamoDB table `TOKENS_TABLE`
(environment, read on every call; hash key `token_hash`), and an enabled item yields an Allow whose
`usageIdentifierKey` is the tenant's API key value: API Gateway meters and throttles the request on that key's
usage plan, and the caller never holds a key. Outcomes:
- header missing, empty, over 4096 characters, not `Bearer`, or a token that is not 32-256 characters of
  `[A-Za-z0-9_-]` (urlsafe base64, as `tools/tokens.py` issues them): `Exception("Unauthorized")`, which
  API Gateway turns into 401; DynamoDB is not called;
- a token with no item (never issued, or revoked: revoking deletes the item) or whose item is disabled or
  incomplete: an explicit Deny, 403;
- anything else (configuration, DynamoDB, a malformed `methodArn`): raised as is, which API Gateway reports as a
  500 without the message.

Table items: `token_hash` (S), `tenant_id` (S), `api_key_value` (S), `api_key_id` (S), `enabled` (BOOL),
`created` (S). Only hashes are stored, so reading the table yields no token; the API key values it holds admit
nothing on their own, since with key source AUTHORIZER API Gateway ignores `x-api-key`.

Timing: the lookup is a point read by hash, so its duration does not depend on how much of a token matches a
valid one, and the stored hash is compared with `hmac.compare_digest`, never `==`.

Policy scope: API Gateway caches the decision per token (the identity source) for the authorizer's TTL and
applies it to every request that carries the token, whatever method it calls. So the policy names the route
tokens are for, `POST /keys` in the stage of the request's method ARN, rather than echoing the ARN of the
request that filled the cache; it grants no other stage or API. A second route would need adding to `ROUTES`,
or a cached Allow would deny it. A revoked token keeps a cached Allow until the TTL runs out; reads are strongly
consistent, so the first uncached call after a revocation is already denied.

Logs: one JSON line per decision with the tenant id, the first 12 hex characters of the token's hash and the
outcome; never the header, the token or the API key value.
"""

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from structured_log import get_logger  # lambda/shared/, packaged next to this file

if TYPE_CHECKING:  # the stubs are a lint dependency, not in the deployed package
    from mypy_boto3_dynamodb import DynamoDBClient

UNAUTHORIZED = "Unauthorized"  # the exact error message API Gateway turns into 401
UNKNOWN_PRINCIPAL = "unknown"
# The API's routes (constructs_lib/api_contract.py), as `<METHOD>/<path>` in a method ARN: what an Allow grants.
ROUTES = ("POST/keys",)
MAX_HEADER_LENGTH = 4096
HASH_PREFIX_LENGTH = 12

_BEARER_RE = re.compile(r"(?i:bearer) +([A-Za-z0-9_-]{32,256})")
# arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>
_METHOD_ARN_RE = re.compile(r"(arn:[a-z-]+:execute-api:[a-z0-9-]+:[0-9]{12}:[a-z0-9]+/[^/]+)/[^/]+/.*")

# The caller's request waits on this lookup: fail fast, retry throttling briefly.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})


class ConfigError(Exception):
    """The function's environment is misconfigured (an operator problem, a 500 for callers)."""


class Malformed(Exception):
    """The request carries no usable bearer token (401); `reason` says why, without quoting the header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Decision:
    """What an item says about a token: `allowed` is the only outcome with an API key."""

    outcome: str
    tenant_id: str | None = None
    api_key_id: str | None = None
    api_key_value: str | None = None


# --- Pure functions, no AWS calls -------------------------------------------------------------------------


def tokens_table(environ: Mapping[str, str]) -> str:
    table = environ.get("TOKENS_TABLE", "").strip()
    if not table:
        raise ConfigError("TOKENS_TABLE is not set")
    return table


def authorization_header(headers: Mapping[object, object] | None) -> object:
    """The `Authorization` value, whatever the name's case; None when absent. Two spellings are ambiguous."""
    values = [
        value for name, value in (headers or {}).items() if isinstance(name, str) and name.lower() == "authorization"
    ]
    if len(values) > 1:
        raise Malformed("duplicate_header")
    return values[0] if values else None


def bearer_token(header: object) -> str:
    """The token of `Bearer <token>` (the scheme is case-insensitive, as RFC 7235 says)."""
    if header is None:
        raise Malformed("missing_header")
    if not isinstance(header, str) or not header.strip():
        raise Malformed("empty_header")
    if len(header) > MAX_HEADER_LENGTH:
        raise Malformed("header_too_long")
    match = _BEARER_RE.fullmatch(header)
    if not match:
        raise Malformed("not_bearer" if header.split(" ")[0].lower() != "bearer" else "malformed_token")
    return match.group(1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def policy_resources(method_arn: object) -> list[str]:
    """The routes of the request's API and stage, from its method ARN."""
    match = _METHOD_ARN_RE.fullmatch(method_arn) if isinstance(method_arn, str) else None
    if not match:
        raise ValueError(f"methodArn is not an execute-api method ARN: {method_arn!r}")
    return [f"{match.group(1)}/{route}" for route in ROUTES]


def _string(item: Mapping[str, Any], name: str) -> str | None:
    value: str | None = item.get(name, {}).get("S")
    return value or None


def decide(item: Mapping[str, Any] | None, expected_hash: str) -> Decision:
    """The decision for a token's item (DynamoDB's typed attributes, or None when there is none)."""
    if item is None or not hmac.compare_digest(_string(item, "token_hash") or "", expected_hash):
        return Decision("denied_unknown")
    tenant_id = _string(item, "tenant_id")
    if item.get("enabled", {}).get("BOOL") is not True:
        return Decision("denied_disabled", tenant_id)
    api_key_id, api_key_value = _string(item, "api_key_id"), _string(item, "api_key_value")
    if not (tenant_id and api_key_id and api_key_value):
        return Decision("denied_incomplete", tenant_id)
    return Decision("allowed", tenant_id, api_key_id, api_key_value)


def authorizer_response(decision: Decision, resources: list[str]) -> dict[str, Any]:
    """API Gateway's authorizer output: Allow with the tenant's API key, or an explicit Deny."""
    allowed = decision.outcome == "allowed"
    response: dict[str, Any] = {
        "principalId": decision.tenant_id or UNKNOWN_PRINCIPAL,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow" if allowed else "Deny", "Resource": resources}
            ],
        },
    }
    if allowed:
        response["usageIdentifierKey"] = decision.api_key_value
        response["context"] = {"tenant_id": decision.tenant_id, "api_key_id": decision.api_key_id}
    return response


# --- AWS calls ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    """One session per container, so botocore loads the service model once."""
    return boto3.session.Session()


@lru_cache(maxsize=1)
def _dynamodb() -> "DynamoDBClient":
    """One client for the container's life; boto3 itself honours AWS_ENDPOINT_URL."""
    return _session().client("dynamodb", config=_CLIENT_CONFIG)


def _lookup(table: str, digest: str) -> dict[str, Any] | None:
    """The token's item, or None. Strongly consistent, so a deletion (revocation) is seen at once."""
    response = _dynamodb().get_item(TableName=table, Key={"token_hash": {"S": digest}}, ConsistentRead=True)
    return response.get("Item")


def _error_code(error: BaseException) -> str | None:
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


# --- Logging and entry point ----------------------------------------------------------------------------------


LOG = get_logger("token_authorizer")


def _log(level: int, message: str, fields: Mapping[str, Any], exc_info: bool = False, **more: Any) -> None:
    LOG.log(level, message, exc_info=exc_info, extra={"fields": {**fields, **more}})


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """401 for a request without a well-formed token, else Allow or Deny from the token's item."""
    fields: dict[str, Any] = {
        "request_id": getattr(context, "aws_request_id", None) or "unknown",
        "api_request_id": (event.get("requestContext") or {}).get("requestId"),
    }
    try:
        token = bearer_token(authorization_header(event.get("headers")))
    except Malformed as error:
        _log(logging.WARNING, "request unauthorized", fields, outcome="unauthorized", reason=error.reason)
        raise Exception(UNAUTHORIZED) from None
    digest = token_hash(token)
    fields["token_hash_prefix"] = digest[:HASH_PREFIX_LENGTH]
    try:
        resources = policy_resources(event.get("methodArn"))
        item = _lookup(tokens_table(os.environ), digest)
    except Exception as error:
        _log(
            logging.ERROR,
            "authorization failed",
            fields,
            exc_info=True,
            outcome="error",
            error_type=type(error).__name__,
            error_code=_error_code(error),
        )
        raise
    decision = decide(item, digest)
    level = logging.ERROR if decision.outcome == "denied_incomplete" else logging.INFO
    _log(
        level,
        "request allowed" if decision.outcome == "allowed" else "request denied",
        fields,
        outcome=decision.outcome,
        tenant_id=decision.tenant_id,
        api_key_id=decision.api_key_id,
    )
    return authorizer_response(decision, resources)
