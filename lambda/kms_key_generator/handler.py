"""Create a KMS key plus its alias for an API Gateway client, in this account or an allowed other one.

Contract (API Gateway relies on it): the event is the mapping template's output
`{Account, Region, KeyUsage, KeyAlias, KeyDescription}` with optional `KeySpec`. Success returns the key's
ids; failures raise with a message starting `BadRequest:`, `Forbidden:` or `Conflict:` (mapped to 400, 403,
409). Anything else becomes a generic `InternalError:` (500) whose message carries no AWS error text; the
detail goes to the log instead.

Guarantees: nothing is created for an invalid request or a taken alias (checked before CreateKey), and a key
whose rotation or alias could not be set up is scheduled for deletion before the error is raised, so a client
never gets a usable key without its alias.

Configuration comes from environment variables read on every call: `SERVICE_NAME`,
`CROSS_ACCOUNT_ROLE_NAME`, `ALLOWED_ACCOUNTS` and `ALLOWED_REGIONS` (comma-separated; empty means own
account only / every KMS region).

Imports stay to the stdlib modules boto3 loads anyway, so a cold start costs little more than `import boto3`;
the boto3 session, clients and region list are built on first use and cached for the container's life.
"""

import json
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from structured_log import get_logger  # lambda/shared/, packaged next to this file

REQUIRED_FIELDS = ("Account", "Region", "KeyUsage", "KeyAlias", "KeyDescription")
OPTIONAL_FIELDS = ("KeySpec",)

# Valid KeyUsage/KeySpec pairs, as documented for KMS CreateKey.
KEY_SPECS_BY_USAGE = {
    "ENCRYPT_DECRYPT": ("SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "SM2"),
    "SIGN_VERIFY": (
        "RSA_2048", "RSA_3072", "RSA_4096",
        "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_NIST_EDWARDS25519", "ECC_SECG_P256K1",
        "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "SM2",
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

ALIAS_PREFIX = "alias/"
RESERVED_ALIAS_PREFIX = "alias/aws/"
MAX_ALIAS_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 8192
# The shortest window KMS allows; the key is unusable (PendingDeletion) from the moment it is scheduled.
DELETION_WINDOW_DAYS = 7
# Assumed-role credentials live only as long as one request needs them.
ASSUMED_ROLE_SECONDS = 900

_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_ALIAS_NAME_RE = re.compile(r"[A-Za-z0-9/_-]+")
_SESSION_NAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_+=,.@-]")

# Fail fast and retry throttling with backoff: API Gateway gives up on the integration after 29 seconds.
_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


class RequestError(Exception):
    """A problem the caller must fix; the message starts with the prefix API Gateway maps to a status."""

    prefix = ""

    def __init__(self, detail):
        super().__init__(f"{self.prefix}: {detail}")


class BadRequest(RequestError):
    """400: the request is malformed or asks for something KMS or this service does not offer."""

    prefix = "BadRequest"


class Forbidden(RequestError):
    """403: the target account is not one this service may create keys in."""

    prefix = "Forbidden"


class Conflict(RequestError):
    """409: the alias already names a key."""

    prefix = "Conflict"


class InternalError(Exception):
    """500: anything else; the message is generic so no AWS detail reaches the client."""


class ConfigError(Exception):
    """The function's environment is misconfigured (an operator problem, reported to clients as a 500)."""


@dataclass(frozen=True)
class Settings:
    """The function's configuration, from its environment variables."""

    service_name: str
    cross_account_role_name: str
    allowed_accounts: frozenset
    allowed_regions: frozenset


@dataclass(frozen=True)
class Identity:
    """Where the function itself runs: the account that is always allowed and the partition of its ARNs."""

    account: str
    partition: str


@dataclass(frozen=True)
class KeyRequest:
    """A validated request: every field is safe to pass to KMS as is."""

    account: str
    region: str
    key_usage: str
    key_spec: str
    alias: str
    description: str


# --- Configuration and identity -------------------------------------------------------------------------


def _csv(value):
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def load_settings(environ):
    """Read the settings from `environ`; a bad value is an operator error, never the client's."""
    service_name = environ.get("SERVICE_NAME", "").strip()
    if not service_name:
        raise ConfigError("SERVICE_NAME is not set")
    allowed_accounts = _csv(environ.get("ALLOWED_ACCOUNTS", ""))
    bad = sorted(account for account in allowed_accounts if not _ACCOUNT_RE.fullmatch(account))
    if bad:
        raise ConfigError(f"ALLOWED_ACCOUNTS: not 12-digit account ids: {', '.join(bad)}")
    return Settings(
        service_name=service_name,
        cross_account_role_name=environ.get("CROSS_ACCOUNT_ROLE_NAME", "").strip(),
        allowed_accounts=allowed_accounts,
        allowed_regions=_csv(environ.get("ALLOWED_REGIONS", "")),
    )


def own_identity(context):
    """The function's account and partition: from its ARN when invoked by Lambda, else from STS."""
    arn = getattr(context, "invoked_function_arn", None)
    if arn:
        return _identity_from_arn(arn)
    return _caller_identity()


def _identity_from_arn(arn):
    _, partition, _, _, account = arn.split(":")[:5]
    return Identity(account=account, partition=partition)


@lru_cache(maxsize=1)
def _caller_identity():
    return _identity_from_arn(_client("sts", None).get_caller_identity()["Arn"])


@lru_cache(maxsize=1)
def kms_regions():
    """Every region KMS serves, mapped to its partition, from botocore's bundled endpoint data."""
    session = _session()
    return {
        region: partition
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("kms", partition_name=partition)
    }


# --- Validation: pure functions, no AWS calls -------------------------------------------------------------


def _json_type(value):
    """The JSON name of a decoded value's type, for messages a client understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


def _show(value, limit=80):
    """Quote client input for a message: JSON-escaped (one line, no control characters) and bounded."""
    shown = json.dumps(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _string(field, value):
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string, got {_json_type(value)}")
    return value


def validate_account(value, allowed_accounts):
    """A 12-digit account id among `allowed_accounts` (which includes the function's own)."""
    account = _string("Account", value)
    if not _ACCOUNT_RE.fullmatch(account):
        raise BadRequest(f"Account: must be exactly 12 digits, got {_show(account)}")
    if account not in allowed_accounts:
        raise Forbidden(f"Account: {account} is not allowed")
    return account


def validate_region(value, regions, allowed_regions, partition):
    """A KMS region (`regions` maps each to its partition) in the function's partition and allow-list."""
    region = _string("Region", value)
    if region not in regions:
        raise BadRequest(f"Region: {_show(region)} is not an AWS region where KMS is available")
    if regions[region] != partition:
        raise BadRequest(
            f"Region: {region} is in partition {regions[region]}, this service runs in partition {partition}"
        )
    if allowed_regions and region not in allowed_regions:
        raise BadRequest(f"Region: {region} is not allowed (allowed: {', '.join(sorted(allowed_regions))})")
    return region


def validate_key_usage(value):
    key_usage = _string("KeyUsage", value)
    if key_usage not in KEY_SPECS_BY_USAGE:
        raise BadRequest(f"KeyUsage: {_show(key_usage)} is not one of {', '.join(KEY_SPECS_BY_USAGE)}")
    return key_usage


def validate_key_spec(value, key_usage, region_partition):
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


def validate_alias(value):
    """The alias as `alias/<name>`, given with or without the prefix."""
    text = _string("KeyAlias", value)
    name = text[len(ALIAS_PREFIX):] if text.startswith(ALIAS_PREFIX) else text
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


def validate_description(value):
    description = _string("KeyDescription", value)
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise BadRequest(
            f"KeyDescription: must be at most {MAX_DESCRIPTION_LENGTH} characters, got {len(description)}"
        )
    return description


def parse_request(event, *, allowed_accounts, allowed_regions, regions, partition):
    """Validate the whole event, field by field in a fixed order; the first problem is raised."""
    if not isinstance(event, dict):
        raise BadRequest(f"request must be a JSON object, got {_json_type(event)}")
    unknown = sorted(set(event) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
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
        alias=validate_alias(event["KeyAlias"]),
        description=validate_description(event["KeyDescription"]),
    )


def role_session_name(service_name, request_id):
    """`<service>-<request id>`, made to fit STS's RoleSessionName rules (64 of `[\\w+=,.@-]`)."""
    return _SESSION_NAME_UNSAFE_RE.sub("-", f"{service_name}-{request_id}")[:64]


# --- AWS calls ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _session():
    """One session per container, so every client shares botocore's loaded service models."""
    return boto3.session.Session()


@lru_cache(maxsize=16)
def _client(service, region, credentials=None):
    """A client per (service, region, credentials); own-account clients are reused across invocations."""
    keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    return _session().client(service, region_name=region, config=_CLIENT_CONFIG, **dict(zip(keys, credentials or ())))


def _assume_role(settings, identity, account, request_id):
    """Credentials in `account`, from a session named after the request so CloudTrail ties the two."""
    if not settings.cross_account_role_name:
        raise ConfigError("CROSS_ACCOUNT_ROLE_NAME is not set")
    response = _client("sts", None).assume_role(
        RoleArn=f"arn:{identity.partition}:iam::{account}:role/{settings.cross_account_role_name}",
        RoleSessionName=role_session_name(settings.service_name, request_id),
        DurationSeconds=ASSUMED_ROLE_SECONDS,
    )
    credentials = response["Credentials"]
    return credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]


def _error_code(error):
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def _existing_key_id(kms, alias):
    """The id of the key `alias` names, or None when the alias is free."""
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except ClientError as error:
        if _error_code(error) == "NotFoundException":
            return None
        raise


def _conflict(alias, key_id):
    return Conflict(f"alias {alias} already exists" + (f" (key {key_id})" if key_id else ""))


def _discard_key(kms, key_id, request_id):
    """Make a half-configured key unusable; if even that fails, log loudly so an operator can."""
    try:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=DELETION_WINDOW_DAYS)
    except Exception:
        _log(logging.ERROR, "cleanup failed: key left without alias", request_id, exc_info=True, key_id=key_id)
    else:
        _log(logging.WARNING, "key scheduled for deletion", request_id, outcome="rolled_back", key_id=key_id)


def create_key(request, settings, identity, request_id):
    """Create the key, enable rotation when symmetric, then the alias last: the alias commits the key."""
    credentials = None
    if request.account != identity.account:
        credentials = _assume_role(settings, identity, request.account, request_id)
    kms = _client("kms", request.region, credentials)

    existing = _existing_key_id(kms, request.alias)
    if existing:
        raise _conflict(request.alias, existing)

    key = kms.create_key(
        Description=request.description,
        KeyUsage=request.key_usage,
        KeySpec=request.key_spec,
        Tags=[
            {"TagKey": "CreatedBy", "TagValue": settings.service_name},
            {"TagKey": "RequestId", "TagValue": request_id},
        ],
    )["KeyMetadata"]
    key_id = key["KeyId"]
    try:
        if request.key_spec == "SYMMETRIC_DEFAULT":
            kms.enable_key_rotation(KeyId=key_id)
        kms.create_alias(AliasName=request.alias, TargetKeyId=key_id)
    except Exception as error:
        _discard_key(kms, key_id, request_id)
        if _error_code(error) == "AlreadyExistsException":
            # Another request took the alias between our check and CreateAlias.
            raise _conflict(request.alias, _existing_key_id(kms, request.alias)) from None
        raise

    return {
        "KeyId": key_id,
        "KeyArn": key["Arn"],
        "AliasName": request.alias,
        "Region": request.region,
        "Account": request.account,
        "KeyUsage": request.key_usage,
        "KeySpec": request.key_spec,
    }


# --- Logging --------------------------------------------------------------------------------------------------


LOG = get_logger("kms_key_generator")


def _log(level, message, request_id, exc_info=False, **fields):
    LOG.log(level, message, exc_info=exc_info, extra={"fields": {"request_id": request_id, **fields}})


def _request_fields(request):
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


# --- Entry point ----------------------------------------------------------------------------------------------


def lambda_handler(event, context):
    """Validate the event, create the key and alias, and map every failure to a status prefix."""
    request_id = getattr(context, "aws_request_id", None) or "unknown"
    request = None
    try:
        settings = load_settings(os.environ)
        identity = own_identity(context)
        request = parse_request(
            event,
            allowed_accounts=settings.allowed_accounts | {identity.account},
            allowed_regions=settings.allowed_regions,
            regions=kms_regions(),
            partition=identity.partition,
        )
        result = create_key(request, settings, identity, request_id)
    except RequestError as error:
        _log(logging.WARNING, "request rejected", request_id, outcome="rejected", error=str(error),
             **_request_fields(request))
        raise
    except Exception as error:
        _log(logging.ERROR, "key creation failed", request_id, exc_info=True, outcome="error",
             error_type=type(error).__name__, error_code=_error_code(error), **_request_fields(request))
        raise InternalError(f"InternalError: key creation failed (request {request_id})") from None

    _log(logging.INFO, "key created", request_id, outcome="created", key_id=result["KeyId"],
         **_request_fields(request))
    return result
