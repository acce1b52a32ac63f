"""Create a KMS key plus its alias for an API Gateway client, in this account or an allowed other one.

Contract (API Gateway relies on it): the event is the mapping template's output
`{Account, Region, KeyUsage, KeyAlias, KeyDescription}` with optional `KeySpec`, plus
`"Caller": {"ApiKeyId": "<$context.identity.apiKeyId>", "TenantId": "<$context.authorizer.tenant_id>"}`, which
the template builds from API Gateway's context (strings, `""` when absent; the client never controls it).
Success returns the key's ids and `Replayed`; failures raise with a message starting `BadRequest:`, `Forbidden:`,
`Conflict:`, `TooManyRequests:` or `ServiceUnavailable:` (mapped to 400, 403, 409, 429, 503). Anything else
becomes a generic `InternalError:` (500) whose message carries no AWS error text; the detail goes to the log.

Errors a client can act on: throttling (KMS, STS or API Gateway) that outlasted botocore's retries is
`TooManyRequests:` (429, the gateway adds `Retry-After`); KMS `LimitExceededException` on CreateKey or CreateAlias
is `ServiceUnavailable:` naming the quota, the account and the Region (503: an operator must raise it); KMS's own
transient failures (`KMSInternalException`, `DependencyTimeoutException`) are `ServiceUnavailable:` too. Each
leaves nothing behind: a key made before the failing call is scheduled for deletion first.

Idempotency: an optional `ClientToken` (1-64 of `[A-Za-z0-9_-]`) is kept on the key as tags (`ClientToken`, and
`RequestFingerprint`, a SHA-256 of every key parameter), and after the alias, as a second alias
`alias/<SERVICE_NAME>-client-tokens/<tenant>/<token>` (an index KMS keeps unique for us; user aliases under it are
refused). A request whose alias already names a key made for the same tenant, token and parameters gets that
key back (`Replayed: true`, still 201); the same token with other parameters, or a token already indexed for
another alias, is `Conflict:`; so is a replay of a key no longer enabled. A token is scoped, like EC2's client
tokens, to the account and Region the request names, and honoured as long as the key exists. The index alias is
written after the key is complete, so a failure there (or no time left for it) is logged and the key still returned:
only the "same token, other alias" check then misses that token. The same holds for two requests with one token and
different aliases running at once: both pass that check before either writes the index, so both get a key (the
second's index write fails and is logged). Making the index the lock would need DeleteAlias/UpdateAlias on undo.

Identity, resolved before any KMS call: a non-empty `Caller.TenantId` names the tenant (authorizer mode). Else
`Caller.ApiKeyId`: equal to `OPERATOR_API_KEY_ID` is the operator; otherwise the API key's tags (API Gateway
`GetTags` on `arn:<partition>:apigateway:<function's region>::/apikeys/<id>`) decide: `Tenant=<id>` is that
tenant, `RotationSecretArn=<OPERATOR_SECRET_ARN>` is the operator (a key the service's rotation created).
Answers are cached per container (a key never changes tenant). No identity, a tenant not in `tenants.json`
or a key with neither tag is `Forbidden: the caller is not a known tenant`, which names nothing internal.

Tenant rules (`tenants.json`, packaged next to this file, `{}` when there are no tenants; missing is `{}`,
malformed is a ConfigError): `{"<tenant id>": {"allowed_accounts": [...], "allowed_regions": [...],
"alias_prefix": "acme/"}}`, every key optional. A tenant may create keys in its `allowed_accounts` (empty: the
service's own account only), in its `allowed_regions` (empty: the global `ALLOWED_REGIONS`), and only under
`alias/<alias_prefix>` (default `<tenant id>/`), all checked before any AWS call. A tenant's accounts are its
own list, not bounded by `ALLOWED_ACCOUNTS` (the operator's list); a region outside a non-empty
`ALLOWED_REGIONS` is refused even when the tenant lists it (settings never let it). Prefixes of two tenants
must not nest. The operator keeps the global rules and any alias. Every key is tagged `Tenant=<tenant id>`
(`Tenant=operator` for the operator; the id `operator` is reserved).

No oracle: a taken alias is `Conflict: alias alias/<name> already exists`, never the key behind it.

Ownership through the key policy: `CreateKey` gets `key_policy(...)` (the account root, as in AWS's default
policy, plus the creating role for DescribeKey, ListResourceTags (replays), TagResource, CreateAlias,
EnableKeyRotation, ScheduleKeyDeletion and PutKeyPolicy), `BypassPolicyLockoutSafetyCheck=False`, `MultiRegion=False`,
`Origin=AWS_KMS` and no tags, so the role's IAM policy needs no `kms:TagResource` on `*`. The key is then
tagged (`CreatedBy`, `RequestId`, `Tenant`), rotation is enabled for symmetric encryption keys, and the alias
is created last: the alias commits the key.

Guarantees: nothing is created for an invalid request, an unknown caller or a taken alias (checked before
CreateKey), and a key whose tagging, rotation or alias could not be set up, in time or at all, is scheduled
for deletion (7 days) before the error is raised, so a client never gets a usable key without its alias.

Deadline: every AWS call is budgeted by `context.get_remaining_time_in_millis()` (29 s, API Gateway's limit,
when the context has none), less a 0.5 s margin for the answer and the log. One attempt of a call costs at
most 1 s to connect + 1 s to read (2 s); CreateKey gets a 4 s read (5 s) and a single attempt, since a retry
after a read timeout could create a second key. Retries (botocore standard mode, at most 3 attempts) back
off at most 1 s then 2 s, so n attempts cost at most 2n + 2^(n-1) - 1 s: 2, 5 or 9 s. CreateKey starts only
if the time left covers it and one attempt of every later call: 5 + 2 (tag) + 2 (rotation, symmetric keys
only) + 2 (alias) + 2 (cleanup) = 13 s, 11 s without rotation (13.5 s / 11.5 s of remaining time with the
margin); otherwise the request fails with the generic 500 and nothing created. Each call gets as many
attempts as fit in the time left after the one-attempt reserve of the calls that must follow it (before
CreateKey: the whole 13 s or 11 s); a post-create call that no longer fits is skipped and the key scheduled
for deletion with what is left. Clients are cached per container for each (region, credentials, attempts,
read timeout): at most a handful, reused across invocations. Not counted: DNS resolution and a throttling
answer's `x-amz-retry-after` (up to 5 s more per retry). So the function's timeout should leave 13.5 s after
the lookups (DescribeKey, plus GetTags and AssumeRole when needed): 15 s at least; the default 20 s does.

Configuration comes from environment variables read on every call: `SERVICE_NAME`, `KEY_FACTORY_ROLE_ARN`
(the function's execution role, owner of own-account keys), `OPERATOR_API_KEY_ID` (static mode) and/or
`OPERATOR_SECRET_ARN` (rotation mode), `CROSS_ACCOUNT_ROLE_NAME` (assumed in other accounts and owner of the
keys there), `ALLOWED_ACCOUNTS` and `ALLOWED_REGIONS` (comma-separated; empty means own account only / every
KMS region).

Imports stay to the stdlib modules boto3 loads anyway, so a cold start costs little more than `import boto3`;
the boto3 session, clients, region list and tenant policies are built on first use and cached for the
container's life.
"""

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from structured_log import get_logger  # lambda/shared/, packaged next to this file

REQUIRED_FIELDS = ("Account", "Region", "KeyUsage", "KeyAlias", "KeyDescription")
OPTIONAL_FIELDS = ("KeySpec", "ClientToken")
# Added by the mapping template from API Gateway's context; never a client value.
CALLER_FIELD = "Caller"

# Valid KeyUsage/KeySpec pairs, as documented for KMS CreateKey.
KEY_SPECS_BY_USAGE = {
    "ENCRYPT_DECRYPT": ("SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "SM2"),
    "SIGN_VERIFY": (
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_NIST_EDWARDS25519",
        "ECC_SECG_P256K1",
        "ML_DSA_44",
        "ML_DSA_65",
        "ML_DSA_87",
        "SM2",
    ),
    "GENERATE_VERIFY_MAC": ("HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"),
    "KEY_AGREEMENT": ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "SM2"),
}
DEFAULT_KEY_SPEC = {
    "ENCRYPT_DECRYPT": "SYMMETRIC_DEFAULT",
    "SIGN_VERIFY": "ECC_NIST_P256",
    "GENERATE_VERIFY_MAC": "HMAC_256",
    "KEY_AGREEMENT": "ECC_NIST_P256",
}
# KMS offers SM2 only in the China regions.
CHINA_PARTITION = "aws-cn"
CHINA_ONLY_KEY_SPECS = frozenset({"SM2"})
# Automatic rotation applies to symmetric encryption keys only.
ROTATING_KEY_SPECS = frozenset({"SYMMETRIC_DEFAULT"})

ALIAS_PREFIX = "alias/"
RESERVED_ALIAS_PREFIX = "alias/aws/"
MAX_ALIAS_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 8192
# The shortest window KMS allows; the key is unusable (PendingDeletion) from the moment it is scheduled.
DELETION_WINDOW_DAYS = 7
# Assumed-role credentials live only as long as one request needs them.
ASSUMED_ROLE_SECONDS = 900

# Tenants and their tags.
OPERATOR = "operator"  # the service's own caller; reserved, no tenant may have this id
TENANT_TAG = "Tenant"
ROTATION_SECRET_TAG = "RotationSecretArn"  # what the rotation function tags the service's API keys with
CLIENT_TOKEN_TAG = "ClientToken"
FINGERPRINT_TAG = "RequestFingerprint"
CLIENT_TOKEN_NAMESPACE = "-client-tokens/"  # after alias/<SERVICE_NAME>: the token index, reserved

# Errors a client should wait out: botocore's throttling codes (standard retry mode), then KMS's transient faults.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
UNAVAILABLE_CODES = frozenset({"KMSInternalException", "DependencyTimeoutException"})
# The KMS quota each operation's LimitExceededException means (Service Quotas names).
QUOTAS = {"CreateKey": "KMS keys", "CreateAlias": "aliases"}
TENANTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tenants.json")
TENANT_POLICY_KEYS = ("allowed_accounts", "allowed_regions", "alias_prefix")
NOT_A_TENANT = "the caller is not a known tenant"
MAX_CACHED_API_KEYS = 1024

# The deadline (see the module docstring): seconds.
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 1.0
CREATE_KEY_READ_TIMEOUT_S = 4.0
CALL_S = CONNECT_TIMEOUT_S + READ_TIMEOUT_S  # one attempt of any call but CreateKey
CREATE_KEY_S = CONNECT_TIMEOUT_S + CREATE_KEY_READ_TIMEOUT_S  # CreateKey's only attempt
MAX_ATTEMPTS = 3
SAFETY_MARGIN_S = 0.5
DEFAULT_REMAINING_S = 29.0  # API Gateway's integration timeout: no request lives longer

_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_CLIENT_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ALIAS_NAME_RE = re.compile(r"[A-Za-z0-9/_-]+")
_SESSION_NAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_+=,.@-]")
_TENANT_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_ALIAS_PREFIX_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9/_-]*/")
_API_KEY_ID_RE = re.compile(r"[A-Za-z0-9]{1,128}")
_ROLE_ARN_RE = re.compile(r"arn:(aws[a-z-]*):iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]+")
_SECRET_ARN_RE = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+")

# The services this function calls (`_client`'s argument).
ServiceName = Literal["apigateway", "kms", "sts"]


class RequestError(Exception):
    """An outcome the caller can act on; the message starts with the prefix API Gateway maps to a status."""

    prefix = ""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.prefix}: {detail}")


class BadRequest(RequestError):
    """400: the request is malformed or asks for something KMS or this service does not offer."""

    prefix = "BadRequest"


class Forbidden(RequestError):
    """403: the caller is unknown, or asks for an account or alias outside its tenant's rules."""

    prefix = "Forbidden"


class Conflict(RequestError):
    """409: the alias already names a key."""

    prefix = "Conflict"


class TooManyRequests(RequestError):
    """429: AWS throttled a call past the retries; the client retries later (with the same client token)."""

    prefix = "TooManyRequests"


class ServiceUnavailable(RequestError):
    """503: a KMS quota is reached, or KMS is failing; nothing was created."""

    prefix = "ServiceUnavailable"


class InternalError(Exception):
    """500: anything else; the message is generic so no AWS detail reaches the client."""


class ConfigError(Exception):
    """The function's environment is misconfigured (an operator problem, reported to clients as a 500)."""


class DeadlineExceeded(Exception):
    """Too little time is left to make a call safely (reported to clients as a 500)."""


@dataclass(frozen=True)
class Settings:
    """The function's configuration, from its environment variables."""

    service_name: str
    cross_account_role_name: str
    allowed_accounts: frozenset[str]
    allowed_regions: frozenset[str]
    key_factory_role_arn: str = ""
    operator_api_key_id: str = ""
    operator_secret_arn: str = ""


@dataclass(frozen=True)
class Identity:
    """Where the function itself runs: the account that is always allowed, its ARNs' partition, its region."""

    account: str
    partition: str
    region: str = ""


@dataclass(frozen=True)
class TenantPolicy:
    """One tenant's entry of tenants.json; empty lists mean the defaults (see the module docstring)."""

    allowed_accounts: frozenset[str]
    allowed_regions: frozenset[str]
    alias_prefix: str


@dataclass(frozen=True)
class CallerRef:
    """What API Gateway says about the caller (`""` when it says nothing)."""

    api_key_id: str
    tenant_id: str


@dataclass(frozen=True)
class Scope:
    """What one caller may do: accounts, regions (None: every KMS region) and alias prefix ("" : any)."""

    tenant: str
    allowed_accounts: frozenset[str]
    allowed_regions: frozenset[str] | None
    alias_prefix: str


@dataclass(frozen=True)
class KeyRequest:
    """A validated request: every field is safe to pass to KMS as is."""

    account: str
    region: str
    key_usage: str
    key_spec: str
    alias: str
    description: str
    client_token: str = ""


# --- Configuration and identity -------------------------------------------------------------------------


def _csv(value: str) -> frozenset[str]:
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read the settings from `environ`; a bad value is an operator error, never the client's."""
    service_name = environ.get("SERVICE_NAME", "").strip()
    if not service_name:
        raise ConfigError("SERVICE_NAME is not set")
    allowed_accounts = _csv(environ.get("ALLOWED_ACCOUNTS", ""))
    bad = sorted(account for account in allowed_accounts if not _ACCOUNT_RE.fullmatch(account))
    if bad:
        raise ConfigError(f"ALLOWED_ACCOUNTS: not 12-digit account ids: {', '.join(bad)}")
    key_factory_role_arn = environ.get("KEY_FACTORY_ROLE_ARN", "").strip()
    if not _ROLE_ARN_RE.fullmatch(key_factory_role_arn):
        raise ConfigError(f"KEY_FACTORY_ROLE_ARN: not an IAM role ARN: {key_factory_role_arn!r}")
    operator_api_key_id = environ.get("OPERATOR_API_KEY_ID", "").strip()
    if operator_api_key_id and not _API_KEY_ID_RE.fullmatch(operator_api_key_id):
        raise ConfigError(f"OPERATOR_API_KEY_ID: not an API key id: {operator_api_key_id!r}")
    operator_secret_arn = environ.get("OPERATOR_SECRET_ARN", "").strip()
    if operator_secret_arn and not _SECRET_ARN_RE.fullmatch(operator_secret_arn):
        raise ConfigError(f"OPERATOR_SECRET_ARN: not a Secrets Manager secret ARN: {operator_secret_arn!r}")
    return Settings(
        service_name=service_name,
        cross_account_role_name=environ.get("CROSS_ACCOUNT_ROLE_NAME", "").strip(),
        allowed_accounts=allowed_accounts,
        allowed_regions=_csv(environ.get("ALLOWED_REGIONS", "")),
        key_factory_role_arn=key_factory_role_arn,
        operator_api_key_id=operator_api_key_id,
        operator_secret_arn=operator_secret_arn,
    )


def parse_tenants(text: str) -> dict[str, TenantPolicy]:
    """The tenant policies from tenants.json's text; anything malformed is a ConfigError."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"tenants.json: not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError("tenants.json: must be an object mapping tenant ids to policies")
    tenants = {}
    for tenant, policy in document.items():
        if not _TENANT_ID_RE.fullmatch(tenant) or tenant == OPERATOR:
            raise ConfigError(f"tenants.json: {tenant!r} is not a valid tenant id (or is reserved)")
        tenants[tenant] = _tenant_policy(tenant, policy)
    prefixes = sorted((policy.alias_prefix.lower(), tenant) for tenant, policy in tenants.items())
    for (prefix, tenant), (other_prefix, other) in zip(prefixes, prefixes[1:], strict=False):
        if other_prefix.startswith(prefix):
            raise ConfigError(f"tenants.json: alias prefixes of {tenant} and {other} overlap")
    return tenants


def _tenant_policy(tenant: str, policy: Any) -> TenantPolicy:
    where = f"tenants.json: {tenant}"
    if not isinstance(policy, dict):
        raise ConfigError(f"{where}: must be an object")
    unknown = sorted(set(policy) - set(TENANT_POLICY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(map(repr, unknown))}")
    accounts = policy.get("allowed_accounts", [])
    if not isinstance(accounts, list) or not all(
        isinstance(account, str) and _ACCOUNT_RE.fullmatch(account) for account in accounts
    ):
        raise ConfigError(f"{where}: allowed_accounts must be a list of 12-digit account ids")
    regions = policy.get("allowed_regions", [])
    if not isinstance(regions, list) or not all(
        isinstance(region, str) and _REGION_RE.fullmatch(region) for region in regions
    ):
        raise ConfigError(f"{where}: allowed_regions must be a list of region names")
    prefix = policy.get("alias_prefix", f"{tenant}/")
    if (
        not isinstance(prefix, str)
        or not _ALIAS_PREFIX_RE.fullmatch(prefix)
        or (ALIAS_PREFIX + prefix).startswith((ALIAS_PREFIX + ALIAS_PREFIX, RESERVED_ALIAS_PREFIX))
        or len(ALIAS_PREFIX + prefix) >= MAX_ALIAS_LENGTH
    ):
        raise ConfigError(f"{where}: alias_prefix must be an alias name ending with '/', without 'alias/'")
    return TenantPolicy(frozenset(accounts), frozenset(regions), prefix)


@lru_cache(maxsize=1)
def _tenants_from_file(path: str) -> dict[str, TenantPolicy]:
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"tenants.json: unreadable: {error}") from None
    return parse_tenants(text)


def load_tenants() -> dict[str, TenantPolicy]:
    """The tenant policies packaged next to this file, read once per container; missing means no tenants."""
    return _tenants_from_file(TENANTS_FILE)


def own_identity(context: object) -> Identity:
    """The function's account, partition and region: from its ARN when invoked by Lambda, else from STS."""
    arn = getattr(context, "invoked_function_arn", None)
    if arn:
        return _identity_from_arn(arn)
    return _caller_identity()


def _identity_from_arn(arn: str, region: str = "") -> Identity:
    _, partition, _, arn_region, account = arn.split(":")[:5]
    return Identity(account=account, partition=partition, region=arn_region or region)


@lru_cache(maxsize=1)
def _caller_identity() -> Identity:
    return _identity_from_arn(_client("sts", None).get_caller_identity()["Arn"], _session().region_name or "")


@lru_cache(maxsize=1)
def kms_regions() -> dict[str, str]:
    """Every region KMS serves, mapped to its partition, from botocore's bundled endpoint data."""
    session = _session()
    return {
        region: partition
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("kms", partition_name=partition)
    }


# --- Who is calling, and what it may do: pure functions --------------------------------------------------------


def parse_caller(event: object) -> CallerRef:
    """The caller API Gateway named in the event (the event must be an object; anything else is no identity)."""
    if not isinstance(event, dict):
        raise BadRequest(f"request must be a JSON object, got {_json_type(event)}")
    caller = event.get(CALLER_FIELD)
    if not isinstance(caller, dict):
        return CallerRef(api_key_id="", tenant_id="")
    api_key_id, tenant_id = caller.get("ApiKeyId"), caller.get("TenantId")
    return CallerRef(
        api_key_id=api_key_id if isinstance(api_key_id, str) else "",
        tenant_id=tenant_id if isinstance(tenant_id, str) else "",
    )


def api_key_tenant(tags: Mapping[str, str], operator_secret_arn: str, tenants: Mapping[str, Any]) -> str | None:
    """The tenant an API key's tags name: `Tenant=<known tenant>`, or the operator for the rotation's keys."""
    tenant = tags.get(TENANT_TAG, "")
    if tenant:
        return tenant if tenant in tenants else None
    if operator_secret_arn and tags.get(ROTATION_SECRET_TAG) == operator_secret_arn:
        return OPERATOR
    return None


def resolve_tenant(
    caller: CallerRef,
    settings: Settings,
    tenants: Mapping[str, TenantPolicy],
    tenant_of_api_key: Callable[[str], str | None],
) -> str:
    """The caller's tenant id (or OPERATOR); `tenant_of_api_key` looks an API key id up (an AWS call)."""
    if caller.tenant_id:
        tenant = caller.tenant_id if caller.tenant_id in tenants else None
    elif settings.operator_api_key_id and caller.api_key_id == settings.operator_api_key_id:
        tenant = OPERATOR
    elif _API_KEY_ID_RE.fullmatch(caller.api_key_id):
        tenant = tenant_of_api_key(caller.api_key_id)
    else:
        tenant = None
    if tenant is None:
        raise Forbidden(NOT_A_TENANT)
    return tenant


def scope_for(tenant: str, tenants: Mapping[str, TenantPolicy], settings: Settings, own_account: str) -> Scope:
    """The accounts, regions and aliases `tenant` may use. A tenant's accounts are its own list (not bounded by
    ALLOWED_ACCOUNTS, which is the operator's); its regions stay within a non-empty ALLOWED_REGIONS."""
    service_regions = settings.allowed_regions or None
    if tenant == OPERATOR:
        return Scope(OPERATOR, settings.allowed_accounts | {own_account}, service_regions, "")
    policy = tenants[tenant]
    accounts = policy.allowed_accounts or frozenset({own_account})
    regions = service_regions
    if policy.allowed_regions:
        regions = policy.allowed_regions & service_regions if service_regions else policy.allowed_regions
    return Scope(tenant, accounts, regions, policy.alias_prefix)


def key_policy(partition: str, account_id: str, owner_role_arn: str) -> dict[str, Any]:
    """The policy every key is created with: the account keeps control through IAM (AWS's default
    statement), and the role that created the key may finish and undo its setup, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableRootAccess",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "KeyFactoryManagesThisKey",
                "Effect": "Allow",
                "Principal": {"AWS": owner_role_arn},
                "Action": [
                    "kms:DescribeKey",
                    "kms:ListResourceTags",
                    "kms:TagResource",
                    "kms:CreateAlias",
                    "kms:EnableKeyRotation",
                    "kms:ScheduleKeyDeletion",
                    "kms:PutKeyPolicy",
                ],
                "Resource": "*",
            },
        ],
    }


def owner_role_arn(settings: Settings, identity: Identity, account: str) -> str:
    """The role that creates (and so manages) keys in `account`: ours at home, the assumed one elsewhere."""
    if account != identity.account:
        return f"arn:{identity.partition}:iam::{account}:role/{settings.cross_account_role_name}"
    match = _ROLE_ARN_RE.fullmatch(settings.key_factory_role_arn)
    if not match or match.groups() != (identity.partition, identity.account):
        raise ConfigError("KEY_FACTORY_ROLE_ARN: not a role of this account and partition")
    return settings.key_factory_role_arn


def key_tags(settings: Settings, tenant: str, request_id: str, request: KeyRequest) -> list[dict[str, str]]:
    tags = {"CreatedBy": settings.service_name, "RequestId": request_id, TENANT_TAG: tenant}
    if request.client_token:
        tags |= {CLIENT_TOKEN_TAG: request.client_token, FINGERPRINT_TAG: request_fingerprint(request)}
    return [{"TagKey": key, "TagValue": value} for key, value in tags.items()]


def request_fingerprint(request: KeyRequest) -> str:
    """What a replay must repeat exactly: every parameter of the key (the caller is the Tenant tag)."""
    fields = [request.account, request.region, request.key_usage, request.key_spec, request.alias, request.description]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def token_alias(settings: Settings, tenant: str, client_token: str) -> str:
    """The alias that indexes a client token (per tenant, so tenants' tokens never collide)."""
    return f"{ALIAS_PREFIX}{settings.service_name}{CLIENT_TOKEN_NAMESPACE}{tenant}/{client_token}"


def client_facing(error: ClientError, region: str, account: str) -> RequestError | None:
    """The 429 or 503 an AWS error means to a client, or None when it is unexpected (a 500)."""
    code, operation = _error_code(error), getattr(error, "operation_name", "")
    if code in THROTTLING_CODES:
        return TooManyRequests(f"AWS is throttling key creation in {region}; retry after the Retry-After delay")
    if code == "LimitExceededException" and operation in QUOTAS:
        return ServiceUnavailable(
            f"the {QUOTAS[operation]} quota of KMS is reached in account {account}, Region {region}; an operator must "
            "raise it (Service Quotas) or delete unused keys"
        )
    if code in UNAVAILABLE_CODES:
        return ServiceUnavailable(f"KMS is temporarily unavailable in {region}; retry later")
    return None


# --- Validation: pure functions, no AWS calls -------------------------------------------------------------


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages a client understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type, str] = {dict: "object", list: "array", str: "string"}
    return names.get(type(value), type(value).__name__)


def _show(value: Any, limit: int = 80) -> str:
    """Quote client input for a message: JSON-escaped (one line, no control characters) and bounded."""
    shown = json.dumps(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string, got {_json_type(value)}")
    return value


def validate_account(value: Any, allowed_accounts: frozenset[str]) -> str:
    """A 12-digit account id among `allowed_accounts` (the caller's scope)."""
    account = _string("Account", value)
    if not _ACCOUNT_RE.fullmatch(account):
        raise BadRequest(f"Account: must be exactly 12 digits, got {_show(account)}")
    if account not in allowed_accounts:
        raise Forbidden(f"Account: {account} is not allowed")
    return account


def validate_region(
    value: Any, regions: Mapping[str, str], allowed_regions: frozenset[str] | None, partition: str
) -> str:
    """A KMS region (`regions` maps each to its partition) in the function's partition and allow-list
    (None: every region)."""
    region = _string("Region", value)
    if region not in regions:
        raise BadRequest(f"Region: {_show(region)} is not an AWS region where KMS is available")
    if regions[region] != partition:
        raise BadRequest(
            f"Region: {region} is in partition {regions[region]}, this service runs in partition {partition}"
        )
    if allowed_regions is not None and region not in allowed_regions:
        allowed = ", ".join(sorted(allowed_regions)) or "none"
        raise BadRequest(f"Region: {region} is not allowed (allowed: {allowed})")
    return region


def validate_key_usage(value: Any) -> str:
    key_usage = _string("KeyUsage", value)
    if key_usage not in KEY_SPECS_BY_USAGE:
        raise BadRequest(f"KeyUsage: {_show(key_usage)} is not one of {', '.join(KEY_SPECS_BY_USAGE)}")
    return key_usage


def validate_key_spec(value: Any, key_usage: str, region_partition: str) -> str:
    """A spec KMS pairs with `key_usage` and offers in the region's partition."""
    key_spec = _string("KeySpec", value)
    valid = KEY_SPECS_BY_USAGE[key_usage]
    if key_spec not in valid:
        raise BadRequest(
            f"KeySpec: {_show(key_spec)} is not valid for KeyUsage {key_usage} (valid: {', '.join(valid)})"
        )
    if key_spec in CHINA_ONLY_KEY_SPECS and region_partition != CHINA_PARTITION:
        raise BadRequest(f"KeySpec: {key_spec} is only available in China regions ({CHINA_PARTITION})")
    return key_spec


def validate_alias(value: Any) -> str:
    """The alias as `alias/<name>`, given with or without the prefix."""
    text = _string("KeyAlias", value)
    name = text[len(ALIAS_PREFIX) :] if text.startswith(ALIAS_PREFIX) else text
    alias = ALIAS_PREFIX + name
    if not name:
        raise BadRequest(f"KeyAlias: must not be empty after the {ALIAS_PREFIX} prefix")
    if not _ALIAS_NAME_RE.fullmatch(name):
        raise BadRequest(f"KeyAlias: {_show(text)} may contain only letters, digits, '/', '_' and '-'")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise BadRequest(
            f"KeyAlias: must be at most {MAX_ALIAS_LENGTH} characters including the {ALIAS_PREFIX} prefix,"
            f" got {len(alias)}"
        )
    if alias.startswith(RESERVED_ALIAS_PREFIX):
        raise BadRequest(f"KeyAlias: must not start with {RESERVED_ALIAS_PREFIX} (reserved for AWS managed keys)")
    return alias


def validate_alias_prefix(alias: str, alias_prefix: str) -> str:
    """A valid `alias/<name>` whose name starts with the caller's prefix ("" allows any)."""
    if not alias[len(ALIAS_PREFIX) :].startswith(alias_prefix):
        raise Forbidden(f"KeyAlias: {alias} is outside your alias prefix {alias_prefix}")
    return alias


def validate_not_reserved(alias: str, reserved_prefix: str) -> str:
    """Refuse aliases in the client-token index (`reserved_prefix`), which only the service writes."""
    if reserved_prefix and alias.lower().startswith(reserved_prefix.lower()):
        raise BadRequest(f"KeyAlias: names under {reserved_prefix} are reserved for the service")
    return alias


def validate_client_token(value: Any) -> str:
    token = _string("ClientToken", value)
    if not _CLIENT_TOKEN_RE.fullmatch(token):
        raise BadRequest("ClientToken: must be 1 to 64 letters, digits, '_' or '-'")
    return token


def validate_description(value: Any) -> str:
    description = _string("KeyDescription", value)
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise BadRequest(f"KeyDescription: must be at most {MAX_DESCRIPTION_LENGTH} characters, got {len(description)}")
    return description


def parse_request(
    event: object,
    *,
    allowed_accounts: frozenset[str],
    allowed_regions: frozenset[str] | None,
    regions: Mapping[str, str],
    partition: str,
    alias_prefix: str = "",
    reserved_alias_prefix: str = "",
) -> KeyRequest:
    """Validate the whole event, field by field in a fixed order; the first problem is raised."""
    if not isinstance(event, dict):
        raise BadRequest(f"request must be a JSON object, got {_json_type(event)}")
    unknown = sorted(set(event) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS) - {CALLER_FIELD})
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(_show(name, 40) for name in unknown[:5])}")
    missing = [name for name in REQUIRED_FIELDS if name not in event]
    if missing:
        raise BadRequest(f"missing required fields: {', '.join(missing)}")
    account = validate_account(event["Account"], allowed_accounts)
    region = validate_region(event["Region"], regions, allowed_regions, partition)
    key_usage = validate_key_usage(event["KeyUsage"])
    if "KeySpec" in event:
        key_spec = validate_key_spec(event["KeySpec"], key_usage, regions[region])
    else:
        key_spec = DEFAULT_KEY_SPEC[key_usage]
    return KeyRequest(
        account=account,
        region=region,
        key_usage=key_usage,
        key_spec=key_spec,
        alias=validate_not_reserved(
            validate_alias_prefix(validate_alias(event["KeyAlias"]), alias_prefix), reserved_alias_prefix
        ),
        description=validate_description(event["KeyDescription"]),
        client_token=validate_client_token(event["ClientToken"]) if "ClientToken" in event else "",
    )


def role_session_name(service_name: str, request_id: str) -> str:
    """`<service>-<request id>`, made to fit STS's RoleSessionName rules (64 of `[\\w+=,.@-]`)."""
    return _SESSION_NAME_UNSAFE_RE.sub("-", f"{service_name}-{request_id}")[:64]


# --- The deadline: pure arithmetic over a clock -----------------------------------------------------------------


def worst_case_seconds(attempts: int, attempt_seconds: float = CALL_S) -> float:
    """The longest `attempts` attempts can take: each attempt's timeouts plus botocore's standard-mode backoff
    (before retry i, at most 2**(i-1) seconds for throttling; far less for other errors)."""
    return attempts * attempt_seconds + (2 ** (attempts - 1) - 1 if attempts else 0)


def setup_operations(key_spec: str) -> tuple[str, ...]:
    """The calls that follow CreateKey, in order; the alias is last because it commits the key."""
    rotation = ("EnableKeyRotation",) if key_spec in ROTATING_KEY_SPECS else ()
    return ("TagResource", *rotation, "CreateAlias")


def create_reserve_seconds(key_spec: str) -> float:
    """The time CreateKey may start with: its own attempt, one attempt of each setup call and the cleanup."""
    return CREATE_KEY_S + (len(setup_operations(key_spec)) + 1) * CALL_S


# The least any CreateKey needs (no rotation): calls made before the request is known keep this much.
MIN_CREATE_RESERVE_S = min(create_reserve_seconds(spec) for spec in DEFAULT_KEY_SPEC.values())

_clock = time.monotonic


class Budget:
    """The time one invocation has left for AWS calls (the safety margin already taken off)."""

    def __init__(self, seconds: float) -> None:
        self._end = _clock() + seconds - SAFETY_MARGIN_S

    @classmethod
    def from_context(cls, context: object) -> "Budget":
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls(remaining() / 1000 if callable(remaining) else DEFAULT_REMAINING_S)

    def left(self) -> float:
        return self._end - _clock()

    def attempts(self, reserve: float) -> int:
        """How many attempts of a call fit while keeping `reserve` seconds for what must follow (0: none)."""
        available = self.left() - reserve
        return next((n for n in range(MAX_ATTEMPTS, 0, -1) if worst_case_seconds(n) <= available), 0)

    def require(self, seconds: float, purpose: str) -> None:
        if self.left() < seconds:
            raise DeadlineExceeded(f"{self.left():.2f}s left, {seconds:.2f}s needed {purpose}")


# --- AWS calls ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    """One session per container, so every client shares botocore's loaded service models."""
    return boto3.session.Session()


@lru_cache(maxsize=32)
def _client(
    service: ServiceName,
    region: str | None,
    credentials: tuple[str, str, str] | None = None,
    attempts: int = MAX_ATTEMPTS,
    read_timeout: float = READ_TIMEOUT_S,
) -> Any:
    """A client per (service, region, credentials, attempts, read timeout), reused across invocations; the
    attempts and timeouts bound each call (see the module docstring). Typed Any: callers read the answers of
    three services."""
    access_key_id, secret_access_key, session_token = credentials or (None, None, None)
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout,
        # total_max_attempts counts the first attempt; botocore's max_attempts would count only retries.
        retries={"mode": "standard", "total_max_attempts": attempts},
    )
    return _session().client(
        service,
        region_name=region,
        config=config,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
    )


def _budgeted_client(
    service: ServiceName, region: str | None, credentials: tuple[str, str, str] | None, budget: Budget, reserve: float
) -> Any:
    """A client whose retries fit in the time left after `reserve`; at least one attempt (the caller has
    checked that one fits)."""
    return _client(service, region, credentials, max(1, budget.attempts(reserve)))


def _assume_role(
    settings: Settings, identity: Identity, account: str, request_id: str, budget: Budget, reserve: float
) -> tuple[str, str, str]:
    """Credentials in `account`, from a session named after the request so CloudTrail ties the two."""
    if not settings.cross_account_role_name:
        raise ConfigError("CROSS_ACCOUNT_ROLE_NAME is not set")
    response = _budgeted_client("sts", None, None, budget, reserve).assume_role(
        RoleArn=f"arn:{identity.partition}:iam::{account}:role/{settings.cross_account_role_name}",
        RoleSessionName=role_session_name(settings.service_name, request_id),
        DurationSeconds=ASSUMED_ROLE_SECONDS,
    )
    credentials = response["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def _error_code(error: BaseException) -> str | None:
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


# API key id -> tenant id (or OPERATOR); a key never changes tenant, so answers live as long as the container.
_API_KEY_TENANTS: dict[str, str] = {}


def _api_key_tags(api_key_id: str, identity: Identity, budget: Budget) -> dict[str, str]:
    """The API key's tags ({} when the key no longer exists)."""
    arn = f"arn:{identity.partition}:apigateway:{identity.region}::/apikeys/{api_key_id}"
    client = _budgeted_client("apigateway", identity.region, None, budget, MIN_CREATE_RESERVE_S)
    try:
        tags: dict[str, str] = client.get_tags(resourceArn=arn).get("tags", {})
        return tags
    except ClientError as error:
        if _error_code(error) == "NotFoundException":
            return {}
        raise


def _tenant_of_api_key(
    api_key_id: str, settings: Settings, tenants: Mapping[str, TenantPolicy], identity: Identity, budget: Budget
) -> str | None:
    if api_key_id in _API_KEY_TENANTS:
        return _API_KEY_TENANTS[api_key_id]
    budget.require(MIN_CREATE_RESERVE_S, "to identify the caller")
    tenant = api_key_tenant(_api_key_tags(api_key_id, identity, budget), settings.operator_secret_arn, tenants)
    if tenant is not None:
        if len(_API_KEY_TENANTS) >= MAX_CACHED_API_KEYS:
            _API_KEY_TENANTS.clear()
        _API_KEY_TENANTS[api_key_id] = tenant
    return tenant


def _describe(kms: Any, key_id: str) -> dict[str, Any] | None:
    """The metadata of the key `key_id` (an id or an alias) names, or None when there is none."""
    try:
        metadata: dict[str, Any] = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        return metadata
    except ClientError as error:
        if _error_code(error) == "NotFoundException":
            return None
        raise


def _made_for(kms: Any, metadata: Mapping[str, Any], request: KeyRequest, tenant: str) -> bool:
    """Whether the key was made for this tenant with this client token (a replay); `Conflict` when the token came
    with other parameters or the key is no longer usable. A key we may not read is someone else's."""
    try:
        tags = {tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=metadata["KeyId"])["Tags"]}
    except ClientError as error:
        if _error_code(error) == "AccessDeniedException":
            return False
        raise
    if tags.get(TENANT_TAG) != tenant or tags.get(CLIENT_TOKEN_TAG) != request.client_token:
        return False
    if tags.get(FINGERPRINT_TAG) != request_fingerprint(request):
        raise Conflict("client_token was already used with different parameters")
    if metadata["KeyState"] != "Enabled":
        raise Conflict(f"the key this client_token created is {metadata['KeyState']}")
    return True


def _earlier_key(kms: Any, request: KeyRequest, tenant: str, settings: Settings) -> dict[str, Any] | None:
    """The key an earlier request with this client token made (a replay), or None: create one. `Conflict` when
    the alias is taken otherwise, or the token was used for another alias."""
    metadata = _describe(kms, request.alias)
    if metadata is not None:
        if request.client_token and _made_for(kms, metadata, request, tenant):
            return metadata
        raise _conflict(request.alias)
    if request.client_token and _describe(kms, token_alias(settings, tenant, request.client_token)) is not None:
        raise Conflict("client_token was already used for another alias")
    return None


def _conflict(alias: str) -> Conflict:
    """The 409 says the alias is taken, nothing about the key behind it (whoever owns it)."""
    return Conflict(f"alias {alias} already exists")


def _discard_key(kms_for: Callable[[int], Any], key_id: str, request_id: str, budget: Budget) -> None:
    """Make a half-configured key unusable; if even that fails, log loudly so an operator can."""
    try:
        kms_for(max(1, budget.attempts(0))).schedule_key_deletion(
            KeyId=key_id, PendingWindowInDays=DELETION_WINDOW_DAYS
        )
    except Exception:
        _log(logging.ERROR, "cleanup failed: key left without alias", request_id, exc_info=True, key_id=key_id)
    else:
        _log(logging.WARNING, "key scheduled for deletion", request_id, outcome="rolled_back", key_id=key_id)


def create_key(
    request: KeyRequest, scope: Scope, settings: Settings, identity: Identity, request_id: str, budget: Budget
) -> dict[str, Any]:
    """Create the key with its policy, tag it, enable rotation when symmetric, then the alias last: the alias
    commits the key. Every call fits the budget; CreateKey starts only when the rest can follow in time."""
    owner = owner_role_arn(settings, identity, request.account)
    reserve = create_reserve_seconds(request.key_spec)
    budget.require(reserve, "before the first call")
    credentials = None
    if request.account != identity.account:
        credentials = _assume_role(settings, identity, request.account, request_id, budget, reserve)

    def kms_for(attempts: int, read_timeout: float = READ_TIMEOUT_S) -> Any:
        return _client("kms", request.region, credentials, attempts, read_timeout)

    earlier = _earlier_key(kms_for(max(1, budget.attempts(reserve))), request, scope.tenant, settings)
    if earlier is not None:
        return _result(earlier, request, replayed=True)

    budget.require(reserve, "to create the key, set it up and undo it")
    key = kms_for(1, CREATE_KEY_READ_TIMEOUT_S).create_key(
        Policy=json.dumps(key_policy(identity.partition, request.account, owner)),
        BypassPolicyLockoutSafetyCheck=False,
        MultiRegion=False,
        Origin="AWS_KMS",
        Description=request.description,
        KeyUsage=request.key_usage,
        KeySpec=request.key_spec,
    )["KeyMetadata"]
    key_id = key["KeyId"]
    operations = setup_operations(request.key_spec)
    calls = {
        "TagResource": lambda kms: kms.tag_resource(
            KeyId=key_id, Tags=key_tags(settings, scope.tenant, request_id, request)
        ),
        "EnableKeyRotation": lambda kms: kms.enable_key_rotation(KeyId=key_id),
        "CreateAlias": lambda kms: kms.create_alias(AliasName=request.alias, TargetKeyId=key_id),
    }
    try:
        for index, operation in enumerate(operations):
            # Keep one attempt for every later call and for the cleanup.
            attempts = budget.attempts((len(operations) - index) * CALL_S)
            if not attempts:
                raise DeadlineExceeded(f"no time left for {operation}")
            try:
                calls[operation](kms_for(attempts))
            except ClientError as error:
                # A retried CreateAlias whose first attempt succeeded finds the alias taken by our own key.
                if _error_code(error) != "AlreadyExistsException" or not _is_ours(
                    kms_for, request.alias, key_id, budget
                ):
                    raise
    except Exception as error:
        _discard_key(kms_for, key_id, request_id, budget)
        if _error_code(error) == "AlreadyExistsException":
            # Another request took the alias between our check and CreateAlias: if it was this one, retried while
            # the first attempt still ran, its key is the answer.
            twin = _concurrent_twin(kms_for, request, scope.tenant, budget)
            if twin is not None:
                return _result(twin, request, replayed=True)
            raise _conflict(request.alias) from None
        raise

    if request.client_token:
        attempts = budget.attempts(0)
        if attempts:
            _index_token(kms_for(attempts), settings, scope.tenant, request, key_id, request_id)
        else:
            _log(logging.WARNING, "client token not indexed: no time left", request_id, key_id=key_id)
    return _result(key, request, replayed=False)


def _result(metadata: Mapping[str, Any], request: KeyRequest, replayed: bool) -> dict[str, Any]:
    return {
        "KeyId": metadata["KeyId"],
        "KeyArn": metadata["Arn"],
        "AliasName": request.alias,
        "Region": request.region,
        "Account": request.account,
        "KeyUsage": request.key_usage,
        "KeySpec": request.key_spec,
        "Replayed": replayed,
    }


def _concurrent_twin(
    kms_for: Callable[[int], Any], request: KeyRequest, tenant: str, budget: Budget
) -> dict[str, Any] | None:
    """The key a concurrent request with the same client token and parameters made, when there is time to ask."""
    attempts = budget.attempts(0)
    if not request.client_token or not attempts:
        return None
    try:
        metadata = _describe(kms_for(attempts), request.alias)
        return metadata if metadata is not None and _made_for(kms_for(attempts), metadata, request, tenant) else None
    except ClientError:
        return None


def _index_token(kms: Any, settings: Settings, tenant: str, request: KeyRequest, key_id: str, request_id: str) -> None:
    """Index the client token once the key is complete. Best effort: the key is the answer either way; without
    the index only the "same token, other alias" check misses this token (logged)."""
    try:
        kms.create_alias(AliasName=token_alias(settings, tenant, request.client_token), TargetKeyId=key_id)
    except ClientError:
        _log(logging.WARNING, "client token not indexed", request_id, exc_info=True, key_id=key_id)


def _is_ours(kms_for: Callable[[int], Any], alias: str, key_id: str, budget: Budget) -> bool:
    """Whether `alias` names `key_id`, when there is time to ask (keeping the cleanup's attempt)."""
    attempts = budget.attempts(CALL_S)
    if not attempts:
        return False
    try:
        metadata = _describe(kms_for(attempts), alias)
    except ClientError:
        return False
    return metadata is not None and metadata["KeyId"] == key_id


# --- Logging --------------------------------------------------------------------------------------------------


LOG = get_logger("kms_key_generator")


def _log(level: int, message: str, request_id: str, exc_info: bool = False, **fields: Any) -> None:
    LOG.log(level, message, exc_info=exc_info, extra={"fields": {"request_id": request_id, **fields}})


# The two helpers below return dict[str, Any], not dict[str, str]: mypy would otherwise refuse to spread them into
# `_log(**fields)`, whose `exc_info` is a bool.
def _request_fields(request: KeyRequest | None) -> dict[str, Any]:
    """What the log may say about a request: never the description, which is free client text."""
    if request is None:
        return {}
    return {
        "account": request.account,
        "region": request.region,
        "alias": request.alias,
        "key_usage": request.key_usage,
        "key_spec": request.key_spec,
    }


def _caller_fields(caller: CallerRef | None, tenant: str | None) -> dict[str, Any]:
    """Who asked: API Gateway's key id and tenant id (ids, never key values) and the tenant they resolved to."""
    fields: dict[str, Any] = {}
    if caller is not None:
        fields.update(caller_api_key_id=caller.api_key_id, caller_tenant_id=caller.tenant_id)
    if tenant is not None:
        fields["tenant"] = tenant
    return fields


# --- Entry point ----------------------------------------------------------------------------------------------


def lambda_handler(event: object, context: object) -> dict[str, Any]:
    """Identify the caller, validate the event against its tenant's rules, create the key and alias (or find the
    one a replayed request made), and map every failure to a status prefix."""
    budget = Budget.from_context(context)
    request_id = getattr(context, "aws_request_id", None) or "unknown"
    caller = tenant = request = None
    region = account = ""  # where the failing call went, for a 429's or a 503's message
    try:
        settings = load_settings(os.environ)
        tenants = load_tenants()
        identity = own_identity(context)
        region, account = identity.region, identity.account
        caller = parse_caller(event)
        tenant = resolve_tenant(
            caller,
            settings,
            tenants,
            lambda api_key_id: _tenant_of_api_key(api_key_id, settings, tenants, identity, budget),
        )
        scope = scope_for(tenant, tenants, settings, identity.account)
        request = parse_request(
            event,
            allowed_accounts=scope.allowed_accounts,
            allowed_regions=scope.allowed_regions,
            regions=kms_regions(),
            partition=identity.partition,
            alias_prefix=scope.alias_prefix,
            reserved_alias_prefix=f"{ALIAS_PREFIX}{settings.service_name}{CLIENT_TOKEN_NAMESPACE}",
        )
        region, account = request.region, request.account
        result = create_key(request, scope, settings, identity, request_id, budget)
    except RequestError as error:
        _log(
            logging.WARNING,
            "request rejected",
            request_id,
            outcome="rejected",
            error=str(error),
            **_caller_fields(caller, tenant),
            **_request_fields(request),
        )
        raise
    except Exception as error:
        mapped = client_facing(error, region, account) if isinstance(error, ClientError) else None
        if mapped is not None:
            _log(
                logging.WARNING,
                "request deferred",
                request_id,
                outcome=type(mapped).__name__,
                error=str(mapped),
                error_code=_error_code(error),
                **_caller_fields(caller, tenant),
                **_request_fields(request),
            )
            raise mapped from None
        _log(
            logging.ERROR,
            "key creation failed",
            request_id,
            exc_info=True,
            outcome="error",
            error_type=type(error).__name__,
            error_code=_error_code(error),
            **_caller_fields(caller, tenant),
            **_request_fields(request),
        )
        raise InternalError(f"InternalError: key creation failed (request {request_id})") from None

    fields = {"key_id": result["KeyId"], **_caller_fields(caller, tenant), **_request_fields(request)}
    if result["Replayed"]:  # counted apart: the KeysCreated metric counts outcome "created" only
        _log(logging.INFO, "key replayed", request_id, outcome="replayed", **fields)
    else:
        _log(logging.INFO, "key created", request_id, outcome="created", **fields)
    return result
