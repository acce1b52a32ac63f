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
of the token>`); `UsagePlan`, the usage plan ids separated by spaces (tag values cannot contain commas);
`Project` and `CostCategory`, copied onto every key.

Environment, read on every call: `SSM_PARAMETER_NAME`, the SecureString clients read the key from, and
`SSM_KMS_KEY_ID`, the KMS key it is encrypted with (passed on every PutParameter, else SSM would re-encrypt
with the default aws/ssm key).

Grace window: the previous key (AWSPREVIOUS) stays valid until the next rotation starts, so a client that read
SSM just before a rotation keeps working for a whole rotation period. createSecret deletes it before creating
the new key, hence at most two live keys at any time: current + pending, or current + previous. It only deletes
a key tagged `RotationSecretArn=<this secret>` (a key this rotation created) that is not also the current key.

Steps, after the checks of AWS's rotation template (rotation enabled, token a known version, already
AWSCURRENT means nothing to do, otherwise it must be AWSPENDING):
- createSecret: unless the pending version already has a value, retire the previous key, create the new key
  tagged `RotationToken=<token>` (or reuse the one a crashed attempt created before PutSecretValue), attach it
  to every usage plan, and store it as the AWSPENDING version.
- setSecret: nothing to do. API Gateway already accepts the key since createSecret; the "service" clients
  use is the SSM parameter, their source of truth, which must change only after testSecret has proved the key
  works, so it is updated in finishSecret.
- testSecret: the pending key exists, is enabled, has the secret's value and is in every usage plan.
- finishSecret: update SSM first, then move AWSCURRENT to the token. In that order a failure in between is
  retried in full (both calls are idempotent); in the other order a retry would find the token already
  current and return, leaving SSM stale. For the same reason an already-current finishSecret still writes
  SSM, which makes a stale parameter heal on the next retry.

Every step is idempotent, so Secrets Manager can retry the whole rotation with the same token after a failure
at any call without leaving an orphan key. A rotation abandoned for good (its AWSPENDING label removed by an
operator) can leave its key behind; it carries `RotationToken`, so it is easy to find.

Cleanup: the invocation's input is `{"Cleanup": {"SecretId": "<secret ARN>"}}`, to which the AWS provider adds
`"tf": {"action": "create"|"update"|"delete", "prev_input": ...}`. On delete, every API key tagged
`RotationSecretArn=<SecretId>` is deleted (current, previous, and the pending key of an interrupted rotation; their
usage-plan keys go with them) and the response is `{"deleted": <count>}`; create and update delete nothing but
still validate the event, so a wrong SecretId fails `terraform apply`, not the destroy that relies on it. The
SecretId must be the full ARN, the exact tag value; a name would match no key and leave them all behind. It
calls only GetApiKeys and DeleteApiKey: it needs nothing from the secret.

Logs are one JSON object per line with the step (or cleanup action), secret ARN, token and key id; never a key
value.
"""

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import timezone
from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from structured_log import get_logger  # lambda/shared/, packaged next to this file

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"

# Tags read from the secret.
KEY_NAME_TAG = "KeyName"
USAGE_PLAN_TAG = "UsagePlan"
COPIED_TAGS = ("Project", "CostCategory")
# Tags this function puts on the API keys it creates.
TOKEN_TAG = "RotationToken"
SECRET_TAG = "RotationSecretArn"
TOKEN_PREFIX_LENGTH = 8

# The cleanup event: our key, and the key aws_lambda_invocation adds (its `terraform_key`, "tf" by default).
CLEANUP_KEY = "Cleanup"
TERRAFORM_KEY = "tf"
CLEANUP_ACTIONS = ("create", "update", "delete")
SECRET_ARN_PATTERN = re.compile(r"arn:[a-z0-9-]+:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+")

# Rotation has minutes, not API Gateway's 29 seconds, so throttling gets more patient retries.
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 5})


class ConfigError(Exception):
    """The function's environment or the secret's tags are wrong: an operator must fix them."""


class PendingKeyInvalid(Exception):
    """testSecret found the pending key unusable; finishSecret must not publish it."""


@dataclass(frozen=True)
class Settings:
    """Where the current key is published, from the function's environment."""

    parameter_name: str
    parameter_kms_key_id: str


@dataclass(frozen=True)
class KeyConfig:
    """What a new key looks like, from the secret's tags."""

    name_prefix: str
    usage_plan_ids: tuple
    copied_tags: dict


@dataclass(frozen=True)
class Rotation:
    """One invocation: the secret, the token being rotated in, and the fields every log line carries."""

    arn: str
    token: str
    versions: dict
    settings: Settings
    log_fields: dict

    def log(self, level, message, **fields):
        _log(level, message, self.log_fields, **fields)


@dataclass(frozen=True)
class Cleanup:
    """One cleanup invocation: Terraform's lifecycle action and the secret whose keys it concerns."""

    action: str
    secret_arn: str


# --- Pure functions, no AWS calls -----------------------------------------------------------------------------


def load_settings(environ):
    """The SSM settings; both are required, as a rotation that cannot publish its key must not start."""
    values = {name: environ.get(name, "").strip() for name in ("SSM_PARAMETER_NAME", "SSM_KMS_KEY_ID")}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(f"environment variables not set: {', '.join(missing)}")
    return Settings(parameter_name=values["SSM_PARAMETER_NAME"], parameter_kms_key_id=values["SSM_KMS_KEY_ID"])


def key_config(tags):
    """The new key's name prefix, usage plans and copied tags, from DescribeSecret's `Tags` list."""
    values = {tag["Key"]: tag["Value"] for tag in tags}
    name_prefix = values.get(KEY_NAME_TAG, "").strip()
    usage_plan_ids = tuple(values.get(USAGE_PLAN_TAG, "").split())
    missing = [name for name, value in ((KEY_NAME_TAG, name_prefix), (USAGE_PLAN_TAG, usage_plan_ids)) if not value]
    if missing:
        raise ConfigError(f"secret tags missing or empty: {', '.join(missing)}")
    return KeyConfig(
        name_prefix=name_prefix,
        usage_plan_ids=usage_plan_ids,
        copied_tags={name: values[name] for name in COPIED_TAGS if name in values},
    )


def cleanup_request(event):
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


def version_stage(metadata, token):
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


def version_with_stage(versions, stage):
    """The id of the version carrying `stage`, or None."""
    return next((version_id for version_id, stages in versions.items() if stage in stages), None)


def key_name(prefix, token):
    return f"{prefix}-{token[:TOKEN_PREFIX_LENGTH]}"


def parse_key_secret(secret_string):
    """The key a secret value describes, or None for a placeholder (absent, not JSON, or not a key)."""
    try:
        value = json.loads(secret_string) if secret_string is not None else None
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("id"), str) and isinstance(value.get("value"), str):
        return value
    return None


def key_secret(api_key, usage_plan_ids):
    """The secret value for an API key as API Gateway returns it (with its value)."""
    return json.dumps({
        "id": api_key["id"],
        "value": api_key["value"],
        "name": api_key["name"],
        "usage_plan_ids": list(usage_plan_ids),
        "created": api_key["createdDate"].astimezone(timezone.utc).isoformat(),
    })


# --- AWS calls ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _session():
    """One session per container, so every client shares botocore's loaded service models."""
    return boto3.session.Session()


@lru_cache(maxsize=4)
def _client(service):
    """One client per service for the container's life; boto3 itself honours AWS_ENDPOINT_URL."""
    return _session().client(service, config=_CLIENT_CONFIG)


def _error_code(error):
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def _secret_string(rotation, version_id, stage=None):
    """A version's value, or None when the version has none (the empty version RotateSecret registers)."""
    params = {"SecretId": rotation.arn, "VersionId": version_id}
    if stage:
        params["VersionStage"] = stage
    try:
        return _client("secretsmanager").get_secret_value(**params)["SecretString"]
    except ClientError as error:
        if _error_code(error) == "ResourceNotFoundException":
            return None
        raise


def _key_at(rotation, stage):
    """The key held by the version carrying `stage`, or None (no such version, or a placeholder)."""
    version_id = version_with_stage(rotation.versions, stage)
    return parse_key_secret(_secret_string(rotation, version_id)) if version_id else None


def _token_key(rotation, stage):
    """The key the token's version holds; it must hold one once createSecret has run."""
    key = parse_key_secret(_secret_string(rotation, rotation.token, stage))
    if key is None:
        raise ValueError(f"Secret version {rotation.token} of {rotation.arn} holds no API key")
    return key


def _retire_previous_key(rotation):
    """Delete the AWSPREVIOUS key, ending its grace window; only a key this rotation created for this secret."""
    previous = _key_at(rotation, PREVIOUS)
    if previous is None:
        return
    key_id = previous["id"]
    current = _key_at(rotation, CURRENT)
    if current is not None and current["id"] == key_id:
        rotation.log(logging.INFO, "previous key is also the current key; kept", key_id=key_id)
        return
    apigateway = _client("apigateway")
    try:
        tags = apigateway.get_api_key(apiKey=key_id).get("tags") or {}
        if tags.get(SECRET_TAG) != rotation.arn:
            rotation.log(logging.WARNING, "previous key not created by this rotation; left in place", key_id=key_id)
            return
        apigateway.delete_api_key(apiKey=key_id)
    except ClientError as error:
        if _error_code(error) != "NotFoundException":
            raise
        rotation.log(logging.INFO, "previous key already deleted", key_id=key_id)
        return
    rotation.log(logging.INFO, "previous key deleted", key_id=key_id)


def _key_created_for_token(rotation, name):
    """The key an earlier attempt with this token created before it could store it, or None."""
    pages = _client("apigateway").get_paginator("get_api_keys").paginate(nameQuery=name, includeValues=True)
    for page in pages:
        for api_key in page.get("items", []):
            tags = api_key.get("tags") or {}
            if tags.get(TOKEN_TAG) == rotation.token and tags.get(SECRET_TAG) == rotation.arn:
                return api_key
    return None


def _attach_to_usage_plan(usage_plan_id, key_id):
    try:
        _client("apigateway").create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id, keyType="API_KEY")
    except ClientError as error:
        if _error_code(error) != "ConflictException":  # already attached
            raise


def _in_usage_plan(usage_plan_id, key_id):
    try:
        _client("apigateway").get_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id)
    except ClientError as error:
        if _error_code(error) == "NotFoundException":
            return False
        raise
    return True


def _publish(rotation, key):
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


def create_secret(rotation, config):
    """Retire the previous key, then create (or find) the new one, attach it and store it as AWSPENDING."""
    if _secret_string(rotation, rotation.token, PENDING) is not None:
        rotation.log(logging.INFO, "pending version already stored")
        return
    _retire_previous_key(rotation)
    name = key_name(config.name_prefix, rotation.token)
    api_key = _key_created_for_token(rotation, name)
    if api_key is None:
        api_key = _client("apigateway").create_api_key(
            name=name,
            enabled=True,
            generateDistinctId=True,
            tags={TOKEN_TAG: rotation.token, SECRET_TAG: rotation.arn, **config.copied_tags},
        )
        rotation.log(logging.INFO, "key created", key_id=api_key["id"])
    else:
        rotation.log(logging.INFO, "key from an interrupted attempt reused", key_id=api_key["id"])
    for usage_plan_id in config.usage_plan_ids:
        _attach_to_usage_plan(usage_plan_id, api_key["id"])
    _client("secretsmanager").put_secret_value(
        SecretId=rotation.arn,
        ClientRequestToken=rotation.token,
        SecretString=key_secret(api_key, config.usage_plan_ids),
        VersionStages=[PENDING],
    )
    rotation.log(logging.INFO, "pending version stored", key_id=api_key["id"])


def set_secret(rotation, config):
    """Nothing to push: API Gateway knows the key since createSecret, and SSM waits for testSecret."""
    rotation.log(logging.INFO, "nothing to set")


def test_secret(rotation, config):
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
    missing = [plan for plan in config.usage_plan_ids if not _in_usage_plan(plan, key_id)]
    if missing:
        raise PendingKeyInvalid(f"pending API key {key_id} is not in usage plans: {', '.join(missing)}")
    rotation.log(logging.INFO, "pending key tested", key_id=key_id)


def finish_secret(rotation, config):
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


def delete_secret_keys(secret_arn, log_fields):
    """Delete every key a rotation of `secret_arn` created; returns how many this call deleted."""
    apigateway = _client("apigateway")
    # All pages first: deleting while paging could move keys across the page boundary.
    key_ids = [
        api_key["id"]
        for page in apigateway.get_paginator("get_api_keys").paginate(includeValues=False)
        for api_key in page.get("items", [])
        if (api_key.get("tags") or {}).get(SECRET_TAG) == secret_arn
    ]
    deleted = []
    for key_id in key_ids:
        try:
            apigateway.delete_api_key(apiKey=key_id)
        except ClientError as error:
            if _error_code(error) != "NotFoundException":
                raise
            _log(logging.INFO, "key already deleted", log_fields, key_id=key_id)
            continue
        deleted.append(key_id)
    _log(logging.INFO, "keys deleted", log_fields, deleted=len(deleted), key_ids=deleted)
    return len(deleted)


STEPS = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


# --- Logging --------------------------------------------------------------------------------------------------


LOG = get_logger("api_key_rotation")


def _log(level, message, log_fields, exc_info=False, **fields):
    LOG.log(level, message, exc_info=exc_info, extra={"fields": {**log_fields, **fields}})


# --- Entry point ----------------------------------------------------------------------------------------------


def _request_id(context):
    return getattr(context, "aws_request_id", None) or "unknown"


def run_cleanup(event, context):
    """Answer Terraform's invocation; an exception fails the apply or destroy, which can then be run again."""
    log_fields = {"request_id": _request_id(context)}
    try:
        cleanup = cleanup_request(event)
        log_fields.update(action=cleanup.action, secret_arn=cleanup.secret_arn)
        if cleanup.action != "delete":
            _log(logging.INFO, "nothing to clean up", log_fields)
            return {"deleted": 0}
        return {"deleted": delete_secret_keys(cleanup.secret_arn, log_fields)}
    except Exception as error:
        _log(logging.ERROR, "cleanup failed", log_fields, exc_info=True, error_type=type(error).__name__,
             error_code=_error_code(error))
        raise


def lambda_handler(event, context):
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
            return
        STEPS[step](rotation, key_config(metadata.get("Tags", [])))
    except Exception as error:
        _log(logging.ERROR, "rotation step failed", log_fields, exc_info=True, error_type=type(error).__name__,
             error_code=_error_code(error))
        raise
