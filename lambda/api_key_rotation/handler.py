"""Rotate the service's API Gateway API key, driven by the four steps of a Secrets Manager rotation, and delete
every key it created when Terraform destroys the service.

Ownership: once rotation is on, this function owns every API key of the service. Terraform creates the secret,
its rotation schedule (with an immediate first rotation), the usage plans and the SSM parameter (with
`ignore_changes = [value]`), but no API key, so `terraform plan` never drifts after a rotation. Nor does
`terraform destroy` see the keys: an `aws_lambda_invocation` with `lifecycle_scope = "CRUD"` calls this function
to delete them (see Cleanup below).

Secret value (JSON): `{"id", "value", "name", "usage_plan_ids", "created"}` of the API key the version holds.
Before the first rotation the secret may have no version at all, or a placeholder AWSCURRENT that is not such
an object (`{}`); both mean "no previous key".

Secret tags (read with DescribeSecret): `KeyName`, the prefix of new key names (`<KeyName>-<first 8 characters
of the token>`); `Project` and `CostCategory`, copied onto every key.

Environment, read on every call: `SSM_PARAMETER_NAME`, the SecureString clients read the key from;
`SSM_KMS_KEY_ID`, the KMS key it is encrypted with (passed on every PutParameter, else SSM would re-encrypt
with the default aws/ssm key); `ROTATION_GRACE_HOURS`, the grace window (setting `rotation.grace_hours`);
`USAGE_PLAN_IDS`, the plans every new key joins, separated by spaces. Not a tag on the secret: the key
generator names the secret (its operator keys carry the secret's ARN), and the plans depend on the stage,
whose integration depends on the key generator, so a tag would close a dependency cycle in Terraform.

Finding the keys without listing them: the role may not call GetApiKeys (`GET /apikeys` would show every
tenant's key and, with `includeValues`, every value), so the keys are found from the secret itself: every key
this function created is stored in a version of the secret, and ListSecretVersionIds (deprecated versions
included, which is where a key kept for its grace lives on once its version loses its last label) names them
all. IAM then lets the role read and delete only keys tagged `RotationSecretArn=<this secret>` and create keys
only with that tag; the handler checks the tag too, so a version holding some other key (an adopted or
hand-written value) never makes it delete that key. The price: createSecret reads every version's value and
asks API Gateway about every key a version names other than the current one (deleted ones answer NotFound), so
its calls grow with the versions Secrets Manager keeps (deprecated ones are pruned beyond about 100): at most
some 200 short calls, for which the function has 60 s.

Grace window, in time: a key that stops being current stays valid for at least `ROTATION_GRACE_HOURS`, so a
client that read the parameter just before a rotation keeps working, however soon the next rotation comes (an
operator's `rotate-secret`, a changed schedule that rotates at once). createSecret deletes a key other than the
current one only once `now >= max(key's createdDate, parameter's LastModifiedDate) + grace`. Publications are
sequential and each one is a parameter change, so every key that was ever published was replaced at or before
the parameter's LastModifiedDate. Hence the invariant: a key published at time t and replaced at time r >= t
works until at least r + grace (so at least t + grace). The key's createdDate alone would not do: a key created
long before it was published (a rotation retried days later) would go early. The parameter's date is an upper
bound, not the exact replacement time, so replaced keys go together: a rotation that starts less than the grace
after the last publication keeps them all, one that starts later deletes them all. The clock is `now()`, which
tests move.

Bound on live keys: the current key, the pending key during a rotation, and the keys replaced since rotations
last paused for at least the grace (plus, for the grace after its creation, the key of a rotation abandoned
before it was published). On a schedule (settings require grace < period) that is two: current + pending, or
current + previous. A hard cap, `MAX_LIVE_KEYS` (10), stops a burst of rotations from piling up keys:
createSecret fails loudly (`TooManyLiveKeys`; nothing created, nothing published, nothing deleted early) rather
than create an eleventh, and Secrets Manager's retry of the rotation succeeds once the grace has passed. The one
exception is a key orphaned between CreateApiKey and PutSecretValue (the function killed there, or CreateApiKey's
answer lost): no version names it, so it is never deleted; it is in no usage plan (attachment follows
PutSecretValue), so it authorizes nothing, and it carries `RotationToken` and `RotationSecretArn` for an operator
to find. A PutSecretValue that fails with an error deletes the new key before raising, unless the version was
stored after all.

Steps, after the checks of AWS's rotation template (rotation enabled, token a known version, already
AWSCURRENT means nothing to do, otherwise it must be AWSPENDING):
- createSecret: unless the pending version already has a value (then only the usage-plan attachments are
  made sure of), delete every key whose grace has ended, refuse a key beyond the cap, create the new key with
  its tags (`RotationToken=<token>`, `RotationSecretArn=<secret ARN>`, the copied tags) in CreateApiKey itself,
  store it as the AWSPENDING version, then attach it to every usage plan.
- setSecret: nothing to do. API Gateway already accepts the key since createSecret; the "service" clients
  use is the SSM parameter, their source of truth, which must change only after testSecret has proved the key
  works, so it is updated in finishSecret.
- testSecret: the pending key exists, is enabled, has the secret's value and is in every usage plan (found
  with GetUsagePlans by key id, which returns plan settings only: no key value of the plan is read).
- finishSecret: update SSM first, then move AWSCURRENT to the token. In that order a failure in between is
  retried in full (both calls are idempotent); in the other order a retry would find the token already
  current and return, leaving SSM stale. For the same reason an already-current finishSecret still writes
  SSM, which makes a stale parameter heal on the next retry (and restarts the grace of the replaced keys,
  which only keeps them longer).

Every step is idempotent, so Secrets Manager can retry the whole rotation with the same token after a failure
at any call; the orphan above is the only key a failure can leave behind. A rotation abandoned for good (its
AWSPENDING label removed by an operator) leaves its key in a deprecated version: the next rotation deletes it
once its grace has ended, like any other replaced key, and a destroy deletes it at once.

Cleanup: the invocation's input is `{"Cleanup": {"SecretId": "<secret ARN>"}}`, to which the AWS provider adds
`"tf": {"action": "create"|"update"|"delete", "prev_input": ...}`. On delete, every key a version of the secret
holds that carries `RotationSecretArn=<SecretId>` is deleted (current, previous, kept, and the pending key of an
interrupted rotation; their usage-plan keys go with them) and the response is `{"deleted": <count>}`; create and
update delete nothing but still validate the event, so a wrong SecretId fails `terraform apply`, not the
destroy that relies on it. The SecretId must be the full ARN, the exact tag value; a name would match no key
and leave them all behind.

Logs are one JSON object per line with the step (or cleanup action), secret ARN, token and key id; never a key
value.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from structured_log import get_logger  # lambda/shared/, packaged next to this file

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"

# Tags read from the secret.
KEY_NAME_TAG = "KeyName"
COPIED_TAGS = ("Project", "CostCategory")
# Tags this function puts on the API keys it creates (the role's CreateApiKey right requires SECRET_TAG).
TOKEN_TAG = "RotationToken"
SECRET_TAG = "RotationSecretArn"
TOKEN_PREFIX_LENGTH = 8

GRACE_VARIABLE = "ROTATION_GRACE_HOURS"
USAGE_PLANS_VARIABLE = "USAGE_PLAN_IDS"
MAX_LIVE_KEYS = 10
"""Keys of the secret that may exist at once (current and pending included): createSecret refuses an 11th."""

# The cleanup event: our key, and the key aws_lambda_invocation adds (its `terraform_key`, "tf" by default).
CLEANUP_KEY = "Cleanup"
TERRAFORM_KEY = "tf"
CLEANUP_ACTIONS = ("create", "update", "delete")
SECRET_ARN_PATTERN = re.compile(r"arn:[a-z0-9-]+:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+")

# Rotation has minutes, not API Gateway's 29 seconds, so throttling gets more patient retries.
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 5})

LogFunction = Callable[..., None]
# The services this function calls (`_client`'s argument).
ServiceName = Literal["apigateway", "secretsmanager", "ssm"]


class ConfigError(Exception):
    """The function's environment or the secret's tags are wrong: an operator must fix them."""


class PendingKeyInvalid(Exception):
    """testSecret found the pending key unusable; finishSecret must not publish it."""


class TooManyLiveKeys(Exception):
    """A new key would exceed MAX_LIVE_KEYS: rotations come faster than the grace window lets keys go."""


def now() -> datetime:
    """The clock every grace decision reads (timezone-aware UTC); tests replace it to move time."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    """Where the current key is published and how long a replaced key stays valid, from the environment."""

    parameter_name: str
    parameter_kms_key_id: str
    grace: timedelta
    usage_plan_ids: tuple[str, ...]


@dataclass(frozen=True)
class KeyConfig:
    """What a new key looks like, from the secret's tags."""

    name_prefix: str
    usage_plan_ids: tuple[str, ...]
    copied_tags: dict[str, str]


@dataclass(frozen=True)
class Rotation:
    """One invocation: the secret, the token being rotated in, and the fields every log line carries."""

    arn: str
    token: str
    versions: dict[str, list[str]]
    settings: Settings
    log_fields: dict[str, Any]

    def log(self, level: int, message: str, **fields: Any) -> None:
        _log(level, message, self.log_fields, **fields)


@dataclass(frozen=True)
class Cleanup:
    """One cleanup invocation: Terraform's lifecycle action and the secret whose keys it concerns."""

    action: str
    secret_arn: str


@dataclass(frozen=True)
class StoredKey:
    """The key one version of the secret holds, with the version's staging labels."""

    version_id: str
    stages: tuple[str, ...]
    key: dict[str, Any]


# --- Pure functions, no AWS calls -----------------------------------------------------------------------------


def load_settings(environ: Mapping[str, str]) -> Settings:
    """The settings; all are required, as a rotation that cannot publish its key, or could delete a key too
    early, must not start."""
    names = ("SSM_PARAMETER_NAME", "SSM_KMS_KEY_ID", GRACE_VARIABLE, USAGE_PLANS_VARIABLE)
    values = {name: environ.get(name, "").strip() for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(f"environment variables not set: {', '.join(missing)}")
    grace = values[GRACE_VARIABLE]
    if not grace.isdigit() or int(grace) < 1:
        raise ConfigError(f"{GRACE_VARIABLE} must be a whole number of hours >= 1, got {grace!r}")
    return Settings(
        parameter_name=values["SSM_PARAMETER_NAME"],
        parameter_kms_key_id=values["SSM_KMS_KEY_ID"],
        grace=timedelta(hours=int(grace)),
        usage_plan_ids=tuple(values[USAGE_PLANS_VARIABLE].split()),
    )


def key_config(tags: list[dict[str, str]], usage_plan_ids: tuple[str, ...]) -> KeyConfig:
    """The new key's name prefix and copied tags, from DescribeSecret's `Tags` list, and the plans it joins."""
    values = {tag["Key"]: tag["Value"] for tag in tags}
    name_prefix = values.get(KEY_NAME_TAG, "").strip()
    if not name_prefix:
        raise ConfigError(f"secret tags missing or empty: {KEY_NAME_TAG}")
    return KeyConfig(
        name_prefix=name_prefix,
        usage_plan_ids=usage_plan_ids,
        copied_tags={name: values[name] for name in COPIED_TAGS if name in values},
    )


def cleanup_request(event: dict[str, Any]) -> Cleanup:
    """The cleanup an `aws_lambda_invocation` event asks for; ValueError for any other shape."""
    cleanup, terraform = event.get(CLEANUP_KEY), event.get(TERRAFORM_KEY)
    if not isinstance(cleanup, dict):
        raise ValueError(f'cleanup event needs "{CLEANUP_KEY}": {{"SecretId": "<secret ARN>"}}, got {cleanup!r}')
    if not isinstance(terraform, dict):
        raise ValueError(
            f'cleanup event needs the "{TERRAFORM_KEY}" object aws_lambda_invocation adds with lifecycle_scope = '
            f'"CRUD", got {terraform!r}'
        )
    action = terraform.get("action")
    if action not in CLEANUP_ACTIONS:
        raise ValueError(f"{TERRAFORM_KEY}.action must be one of {', '.join(CLEANUP_ACTIONS)}, got {action!r}")
    secret_arn = cleanup.get("SecretId")
    if not isinstance(secret_arn, str) or not SECRET_ARN_PATTERN.fullmatch(secret_arn):
        raise ValueError(f"{CLEANUP_KEY}.SecretId must be the secret's full ARN (its keys' tag), got {secret_arn!r}")
    return Cleanup(action=action, secret_arn=secret_arn)


def version_stage(metadata: dict[str, Any], token: str) -> str:
    """CURRENT or PENDING for the token's version, after the checks AWS's rotation template makes."""
    if not metadata.get("RotationEnabled"):
        raise ValueError(f"Secret {metadata['ARN']} is not enabled for rotation")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise ValueError(f"Secret version {token} has no stage for rotation of secret {metadata['ARN']}")
    if CURRENT in versions[token]:
        return CURRENT
    if PENDING not in versions[token]:
        raise ValueError(f"Secret version {token} not set as {PENDING} for rotation of secret {metadata['ARN']}")
    return PENDING


def version_with_stage(versions: dict[str, list[str]], stage: str) -> str | None:
    """The id of the version carrying `stage`, or None."""
    return next((version_id for version_id, stages in versions.items() if stage in stages), None)


def key_name(prefix: str, token: str) -> str:
    return f"{prefix}-{token[:TOKEN_PREFIX_LENGTH]}"


def parse_key_secret(secret_string: str | None) -> dict[str, Any] | None:
    """The key a secret value describes, or None for a placeholder (absent, not JSON, or not a key)."""
    try:
        value = json.loads(secret_string) if secret_string is not None else None
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("id"), str) and isinstance(value.get("value"), str):
        return value
    return None


def key_secret(api_key: dict[str, Any], usage_plan_ids: tuple[str, ...]) -> str:
    """The secret value for an API key as API Gateway returns it (with its value)."""
    return json.dumps(
        {
            "id": api_key["id"],
            "value": api_key["value"],
            "name": api_key["name"],
            "usage_plan_ids": list(usage_plan_ids),
            "created": api_key["createdDate"].astimezone(UTC).isoformat(),
        }
    )


def grace_ends(created: datetime, parameter_changed: datetime | None, grace: timedelta) -> datetime:
    """When a key that is not current may go: `grace` after the later of its creation and the parameter's last
    change (when the key, if it was ever published, was replaced at the latest)."""
    since = created if parameter_changed is None else max(created, parameter_changed)
    return since + grace


# --- AWS calls ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    """One session per container, so every client shares botocore's loaded service models."""
    return boto3.session.Session()


@lru_cache(maxsize=4)
def _client(service: ServiceName) -> Any:
    """One client per service for the container's life; boto3 itself honours AWS_ENDPOINT_URL. Typed Any: the
    callers read the answers of three services."""
    return _session().client(service, config=_CLIENT_CONFIG)


def _error_code(error: BaseException) -> str | None:
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def _secret_string(secret_arn: str, version_id: str, stage: str | None = None) -> str | None:
    """A version's value, or None when the version has none (the empty version RotateSecret registers)."""
    params = {"SecretId": secret_arn, "VersionId": version_id}
    if stage:
        params["VersionStage"] = stage
    try:
        secret_string: str = _client("secretsmanager").get_secret_value(**params)["SecretString"]
        return secret_string
    except ClientError as error:
        if _error_code(error) == "ResourceNotFoundException":
            return None
        raise


def _token_key(rotation: Rotation, stage: str) -> dict[str, Any]:
    """The key the token's version holds; it must hold one once createSecret has run."""
    key = parse_key_secret(_secret_string(rotation.arn, rotation.token, stage))
    if key is None:
        raise ValueError(f"Secret version {rotation.token} of {rotation.arn} holds no API key")
    return key


def _stored_keys(secret_arn: str, skip_version: str | None = None) -> list[StoredKey]:
    """The key of every version of the secret, deprecated versions included: the only way this function finds
    its keys, as it may not list API keys. Versions holding no key (placeholders, an empty pending version) and
    `skip_version` are left out."""
    secrets = _client("secretsmanager")
    found: list[StoredKey] = []
    params: dict[str, Any] = {"SecretId": secret_arn, "IncludeDeprecated": True}
    while True:  # botocore has no paginator for ListSecretVersionIds
        page = secrets.list_secret_version_ids(**params)
        for version in page.get("Versions", []):
            version_id = version["VersionId"]
            if version_id == skip_version:
                continue
            key = parse_key_secret(_secret_string(secret_arn, version_id))
            if key is not None:
                found.append(StoredKey(version_id, tuple(version.get("VersionStages", ())), key))
        if not page.get("NextToken"):
            return found
        params["NextToken"] = page["NextToken"]


def _owned_key(secret_arn: str, key_id: str, log: LogFunction) -> dict[str, Any] | None:
    """The API key (without its value) when it exists and a rotation of `secret_arn` created it, else None.

    IAM refuses GetApiKey on a key without the secret's tag (AccessDenied); the tag is checked here as well, so
    the decision does not rest on the policy alone (and holds where IAM is not enforced)."""
    try:
        api_key: dict[str, Any] = _client("apigateway").get_api_key(apiKey=key_id)
    except ClientError as error:
        code = _error_code(error)
        if code == "NotFoundException":
            log(logging.DEBUG, "key already deleted", key_id=key_id)
            return None
        if code != "AccessDeniedException":
            raise
        api_key = {}
    if (api_key.get("tags") or {}).get(SECRET_TAG) != secret_arn:
        log(logging.WARNING, "key not created by this rotation; left in place", key_id=key_id)
        return None
    return api_key


def _delete_key(key_id: str, log: LogFunction) -> bool:
    """Delete a key; False when it was already gone."""
    try:
        _client("apigateway").delete_api_key(apiKey=key_id)
    except ClientError as error:
        if _error_code(error) != "NotFoundException":
            raise
        log(logging.INFO, "key already deleted", key_id=key_id)
        return False
    return True


def _parameter_changed(rotation: Rotation) -> datetime | None:
    """When the SSM parameter last changed (the latest a replaced key can have been replaced), or None when it
    does not exist. Read without decryption: only the date is needed."""
    try:
        parameter = _client("ssm").get_parameter(Name=rotation.settings.parameter_name, WithDecryption=False)
    except ClientError as error:
        if _error_code(error) == "ParameterNotFound":
            return None
        raise
    changed: datetime = parameter["Parameter"]["LastModifiedDate"]
    return changed


def _retire_old_keys(rotation: Rotation) -> dict[str, datetime | None]:
    """Delete every key of the secret whose grace has ended; returns the live keys kept, each with the end of
    its grace (None for the current key, which is never deleted)."""
    stored = _stored_keys(rotation.arn, skip_version=rotation.token)
    current = next((entry.key["id"] for entry in stored if CURRENT in entry.stages), None)
    kept: dict[str, datetime | None] = {current: None} if current else {}
    others = [key_id for key_id in dict.fromkeys(entry.key["id"] for entry in stored) if key_id not in kept]
    if not others:
        return kept  # nothing but the current key, if any: no need for the parameter's date
    parameter_changed = _parameter_changed(rotation)
    for key_id in others:
        api_key = _owned_key(rotation.arn, key_id, rotation.log)
        if api_key is None:
            continue
        ends = grace_ends(api_key["createdDate"], parameter_changed, rotation.settings.grace)
        if now() < ends:
            kept[key_id] = ends
            rotation.log(
                logging.INFO, "replaced key kept: within its grace window", key_id=key_id, grace_ends=ends.isoformat()
            )
        elif _delete_key(key_id, rotation.log):
            rotation.log(
                logging.INFO,
                "replaced key deleted: its grace window ended",
                key_id=key_id,
                grace_ended=ends.isoformat(),
            )
    return kept


def _attach_to_usage_plan(usage_plan_id: str, key_id: str) -> None:
    try:
        _client("apigateway").create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id, keyType="API_KEY")
    except ClientError as error:
        if _error_code(error) != "ConflictException":  # already attached
            raise


def _usage_plans_of(key_id: str) -> set[str]:
    """The ids of the usage plans holding the key: plan settings only, never another key's value."""
    pages = _client("apigateway").get_paginator("get_usage_plans").paginate(keyId=key_id)
    return {plan["id"] for page in pages for plan in page.get("items", [])}


def _store_pending(rotation: Rotation, api_key: dict[str, Any], config: KeyConfig) -> None:
    """Store the new key as the AWSPENDING version. On an error, unless Secrets Manager stored it after all (an
    answer lost), nothing would ever name the key again: it is deleted before the error is raised."""
    try:
        _client("secretsmanager").put_secret_value(
            SecretId=rotation.arn,
            ClientRequestToken=rotation.token,
            SecretString=key_secret(api_key, config.usage_plan_ids),
            VersionStages=[PENDING],
        )
    except ClientError:
        if _secret_string(rotation.arn, rotation.token, PENDING) is None:
            _delete_key(api_key["id"], rotation.log)
            rotation.log(logging.WARNING, "key deleted: it could not be stored", key_id=api_key["id"])
        raise


def _publish(rotation: Rotation, key: dict[str, Any]) -> None:
    """Make SSM hand out `key`; the same value and KMS key again is harmless."""
    _client("ssm").put_parameter(
        Name=rotation.settings.parameter_name,
        Value=key["value"],
        Type="SecureString",
        KeyId=rotation.settings.parameter_kms_key_id,
        Overwrite=True,
    )
    rotation.log(logging.INFO, "parameter updated", key_id=key["id"], parameter=rotation.settings.parameter_name)


# --- The four steps -------------------------------------------------------------------------------------------


def create_secret(rotation: Rotation, config: KeyConfig) -> None:
    """Delete the keys whose grace ended, then create the new key, store it as AWSPENDING and attach it."""
    pending = _secret_string(rotation.arn, rotation.token, PENDING)
    if pending is not None:
        key = parse_key_secret(pending)
        if key is None:
            raise ValueError(f"Secret version {rotation.token} of {rotation.arn} holds no API key")
        for usage_plan_id in config.usage_plan_ids:  # an earlier attempt may have stopped before attaching
            _attach_to_usage_plan(usage_plan_id, key["id"])
        rotation.log(logging.INFO, "pending version already stored", key_id=key["id"])
        return
    kept = _retire_old_keys(rotation)
    if len(kept) + 1 > MAX_LIVE_KEYS:
        first_end = min((end for end in kept.values() if end is not None), default=now())
        raise TooManyLiveKeys(
            f"{len(kept)} API keys of {rotation.arn} are live (the current key and {len(kept) - 1} in their grace "
            f"window of {rotation.settings.grace}); a new one would exceed the cap of {MAX_LIVE_KEYS}. A retry "
            f"succeeds once the first leaves its grace window, at {first_end.isoformat()}"
        )
    api_key = _client("apigateway").create_api_key(
        name=key_name(config.name_prefix, rotation.token),
        enabled=True,
        generateDistinctId=True,
        tags={TOKEN_TAG: rotation.token, SECRET_TAG: rotation.arn, **config.copied_tags},
    )
    rotation.log(logging.INFO, "key created", key_id=api_key["id"], live_keys=len(kept) + 1)
    _store_pending(rotation, api_key, config)
    for usage_plan_id in config.usage_plan_ids:
        _attach_to_usage_plan(usage_plan_id, api_key["id"])
    rotation.log(logging.INFO, "pending version stored", key_id=api_key["id"])


def set_secret(rotation: Rotation, config: KeyConfig) -> None:
    """Nothing to push: API Gateway knows the key since createSecret, and SSM waits for testSecret."""
    rotation.log(logging.INFO, "nothing to set")


def test_secret(rotation: Rotation, config: KeyConfig) -> None:
    """Refuse to finish with a key clients could not use."""
    key = _token_key(rotation, PENDING)
    key_id = key["id"]
    try:
        api_key = _client("apigateway").get_api_key(apiKey=key_id, includeValue=True)
    except ClientError as error:
        if _error_code(error) == "NotFoundException":
            raise PendingKeyInvalid(f"pending API key {key_id} does not exist") from None
        raise
    if not api_key["enabled"]:
        raise PendingKeyInvalid(f"pending API key {key_id} is disabled")
    if api_key["value"] != key["value"]:
        raise PendingKeyInvalid(f"pending API key {key_id} has a value other than the secret's")
    plans = _usage_plans_of(key_id)
    missing = [plan for plan in config.usage_plan_ids if plan not in plans]
    if missing:
        raise PendingKeyInvalid(f"pending API key {key_id} is not in usage plans: {', '.join(missing)}")
    rotation.log(logging.INFO, "pending key tested", key_id=key_id)


def finish_secret(rotation: Rotation, config: KeyConfig) -> None:
    """Publish the key in SSM, then make the version current (see the module docstring for the order)."""
    key = _token_key(rotation, PENDING)
    _publish(rotation, key)
    current_version = version_with_stage(rotation.versions, CURRENT)
    # With no current version yet (a secret created without a value) there is nothing to remove it from.
    remove = {"RemoveFromVersionId": current_version} if current_version else {}
    _client("secretsmanager").update_secret_version_stage(
        SecretId=rotation.arn, VersionStage=CURRENT, MoveToVersionId=rotation.token, **remove
    )
    rotation.log(logging.INFO, "rotation finished", key_id=key["id"], previous_version=current_version)


# --- Cleanup ----------------------------------------------------------------------------------------------------


def delete_secret_keys(secret_arn: str, log_fields: dict[str, Any]) -> int:
    """Delete every key a version of `secret_arn` holds that a rotation of it created; returns how many this call
    deleted. Grace does not apply: the service is being destroyed."""

    def log(level: int, message: str, **fields: Any) -> None:
        _log(level, message, log_fields, **fields)

    deleted = []
    for key_id in dict.fromkeys(entry.key["id"] for entry in _stored_keys(secret_arn)):
        if _owned_key(secret_arn, key_id, log) is not None and _delete_key(key_id, log):
            deleted.append(key_id)
    log(logging.INFO, "keys deleted", deleted=len(deleted), key_ids=deleted)
    return len(deleted)


STEPS: dict[str, Callable[[Rotation, KeyConfig], None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


# --- Logging --------------------------------------------------------------------------------------------------


LOG = get_logger("api_key_rotation")


def _log(level: int, message: str, log_fields: dict[str, Any], exc_info: bool = False, **fields: Any) -> None:
    LOG.log(level, message, exc_info=exc_info, extra={"fields": {**log_fields, **fields}})


# --- Entry point ----------------------------------------------------------------------------------------------


def _request_id(context: Any) -> str:
    return getattr(context, "aws_request_id", None) or "unknown"


def run_cleanup(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Answer Terraform's invocation; an exception fails the apply or destroy, which can then be run again."""
    log_fields: dict[str, Any] = {"request_id": _request_id(context)}
    try:
        cleanup = cleanup_request(event)
        log_fields.update(action=cleanup.action, secret_arn=cleanup.secret_arn)
        if cleanup.action != "delete":
            _log(logging.INFO, "nothing to clean up", log_fields)
            return {"deleted": 0}
        return {"deleted": delete_secret_keys(cleanup.secret_arn, log_fields)}
    except Exception as error:
        _log(
            logging.ERROR,
            "cleanup failed",
            log_fields,
            exc_info=True,
            error_type=type(error).__name__,
            error_code=_error_code(error),
        )
        raise


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int] | None:
    """Run one step for Secrets Manager (any exception fails the step, which Secrets Manager then retries), or a
    cleanup for Terraform."""
    if CLEANUP_KEY in event or TERRAFORM_KEY in event:
        return run_cleanup(event, context)
    step, token = event["Step"], event["ClientRequestToken"]
    log_fields = {
        "request_id": _request_id(context),
        "step": step,
        "secret_arn": event["SecretId"],
        "token": token,
    }
    try:
        if step not in STEPS:
            raise ValueError(f"Unknown rotation step {step!r} (expected one of {', '.join(STEPS)})")
        settings = load_settings(os.environ)
        metadata = _client("secretsmanager").describe_secret(SecretId=event["SecretId"])
        log_fields["secret_arn"] = metadata["ARN"]
        rotation = Rotation(
            arn=metadata["ARN"],
            token=token,
            versions=metadata.get("VersionIdsToStages", {}),
            settings=settings,
            log_fields=log_fields,
        )
        if version_stage(metadata, token) == CURRENT:
            rotation.log(logging.INFO, "version already current")
            if step == "finishSecret":
                _publish(rotation, _token_key(rotation, CURRENT))
            return None
        STEPS[step](rotation, key_config(metadata.get("Tags", []), settings.usage_plan_ids))
    except Exception as error:
        _log(
            logging.ERROR,
            "rotation step failed",
            log_fields,
            exc_info=True,
            error_type=type(error).__name__,
            error_code=_error_code(error),
        )
        raise
    return None
