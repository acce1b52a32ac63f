"""Typed, validated settings loaded from one TOML file per environment.

The file is `config/default.toml` unless `KMSKG_CONFIG` names another. Every problem found is collected
and raised once as `SettingsError`, one line per problem, each naming the file and the key path
(`usage_plans.default.quota_limit: must be > 0`), before anything is synthesized.

The schema *is* the dataclasses below: field types drive type checks and unknown-key detection, and the
`check` metadata of a field holds its value rule. Defaults are field defaults, so the README table and
the code cannot disagree.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .naming import Names
from .rules import (
    BASE_PATH_PATTERN,
    BUCKET_PATTERN,
    DNS_NAME,
    FUNCTION_NAME_PATTERN,
    LOG_GROUP_PATTERN,
    METHOD_PATH,
    ROLE_NAME_PATTERN,
    STAGE_NAME,
    TABLE_NAME_PATTERN,
    VPC_ENDPOINT_ID,
    ZONE_ID_PATTERN,
    Check,
    cidr,
    matches,
)

CONFIG_ENV_VAR = "KMSKG_CONFIG"
MAX_API_KEYS = 10_000
# The rotation function's cap on live keys (`MAX_LIVE_KEYS` in lambda/api_key_rotation/handler.py): replaced keys
# live out their grace, so a burst of rotations may hold up to this many service keys at once.
ROTATION_MAX_LIVE_KEYS = 10
"""API Gateway's per-account, per-region quota of API keys."""
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "default.toml"


def _rule(check: Check, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    """A field whose value must pass `check` (which returns an error text or None)."""
    return field(default=default, metadata={"check": check}, **kwargs)


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _between(low: int, high: int) -> Check:
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def _one_of(*allowed: str) -> Check:
    return lambda value: None if value in allowed else f"must be one of {', '.join(allowed)}"


def _each(check: Check) -> Check:
    """Apply `check` to every item of a list, naming the first bad item by index."""

    def run(values: list[Any]) -> str | None:
        for index, value in enumerate(values):
            problem = check(value)
            if problem:
                return f"item {index} ({value!r}) {problem}"
        return None

    return run


_NAME = matches(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", "2-40 lowercase letters, digits or '-', starting with a letter")
_REGION = matches(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]", "an AWS region code such as eu-west-1")
_ACCOUNT = matches(r"[0-9]{12}", "a 12-digit AWS account id")
_BUCKET = matches(BUCKET_PATTERN, "a valid S3 bucket name (3-63 lowercase characters)")
_TABLE = matches(TABLE_NAME_PATTERN, "a valid DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
_ROLE = matches(ROLE_NAME_PATTERN, "a valid IAM role name (1-64 of letters, digits and +=,.@_-)")
_PATH_PART = matches(r"[a-z0-9][a-z0-9-]{0,62}", "a single lowercase URL path segment")
# What Terraform 1.11's S3 backend accepts as `kms_key_id` (its validate.go), minus multi-Region keys.
_KMS_ALIAS = r"alias/[A-Za-z0-9/_-]+"
_KMS_KEY_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_STATE_KMS_KEY = matches(
    rf"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{{12}}:(key/{_KMS_KEY_UUID}|{_KMS_ALIAS})|{_KMS_ALIAS}|{_KMS_KEY_UUID}",
    "the state key's ARN, key id, alias name (alias/...) or alias ARN",
)
# HCP Terraform names: organizations and workspaces take letters, digits, '-' and '_' (workspaces at most 90).
_HCP_ORGANIZATION = matches(r"[A-Za-z0-9_-]+", "an HCP Terraform organization name (letters, digits, '-' or '_')")
_HCP_WORKSPACE = matches(r"[A-Za-z0-9_-]{1,90}", "an HCP Terraform workspace name (1-90 letters, digits, '-' or '_')")
_TENANT_ID = matches(r"[a-z0-9][a-z0-9-]{0,62}", "1-63 lowercase letters, digits or '-' (used in key names and tags)")
_TAG_KEY = matches(r"[\w.:/=+@ -]{1,128}", "a tag key of 1-128 characters")
_APIGW_ID = matches(
    r"[a-z0-9]{4,32}", "an API Gateway id such as a1b2c3d4e5 (lowercase letters and digits, not a name or ARN)"
)
_LOG_GROUP = matches(LOG_GROUP_PATTERN, "a CloudWatch log group name such as /aws/lambda/<function>")
_SSM_PATH = matches(r"/[\w./-]{1,1010}", "an SSM parameter name starting with '/'")
_EMAIL = matches(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address")
_ZONE_ID = matches(ZONE_ID_PATTERN, "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ")
_BASE_PATH = matches(BASE_PATH_PATTERN, "a single path segment (letters, digits, . _ -)")
_FUNCTION = matches(FUNCTION_NAME_PATTERN, "a Lambda function name (1-64 of letters, digits, - and _), not an ARN")


def _tag_keys(tags: dict[str, str]) -> str | None:
    return next((f"key {key!r} {_TAG_KEY(key)}" for key in tags if _TAG_KEY(key)), None)


RESERVED_TENANT_ID = "operator"
"""The key generator tags the service's own keys `Tenant=operator`; a tenant of that name would own them."""
_ALIAS_PREFIX_TEXT = matches(  # "alias/" + prefix + one character fits KMS's 256
    r"[A-Za-z0-9_-][A-Za-z0-9/_-]{0,247}/",
    "2-249 letters, digits, '/', '_' or '-', not starting but ending with '/' (e.g. 'acme/')",
)


def _tenant_id(value: str) -> str | None:
    if value == RESERVED_TENANT_ID:
        return f"is reserved (the service tags its own keys Tenant={RESERVED_TENANT_ID})"
    return _TENANT_ID(value)


def _alias_prefix(value: str) -> str | None:
    """An alias name prefix a tenant may own: `alias/` is added by the service, `alias/aws/` is AWS's."""
    if value == "":
        return None  # the default, `<id>/`, checked once derived
    problem = _ALIAS_PREFIX_TEXT(value)
    if problem:
        return problem
    if value.startswith("alias/"):
        return "must not start with 'alias/' (the service adds it: aliases are 'alias/<prefix>...')"
    if value.startswith("aws/"):
        return "must not start with 'aws/' ('alias/aws/' is reserved for AWS managed keys)"
    return None


def _each_once(check: Check) -> Check:
    """`_each(check)`, and no item twice (a repeated account or region is a typo, never an intent)."""
    each = _each(check)

    def run(values: list[Any]) -> str | None:
        problem = each(values)
        if problem:
            return problem
        repeated = (index for index, value in enumerate(values) if value in values[:index])
        index = next(repeated, None)
        return None if index is None else f"item {index} ({values[index]!r}) is listed twice"

    return run


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """The service's identity: names every AWS resource derive from."""

    name: str = _rule(_NAME, "kms-key-generator")
    region: str = _rule(_REGION, "us-east-1")
    environment: str = _rule(_NAME, "dev")
    stage: str = _rule(STAGE_NAME, "v1")


@dataclass(frozen=True, kw_only=True)
class ThrottleSettings:
    """Per-method throttle inside a usage plan; like the plan's, at most the stage's (`api.throttle_*`)."""

    rate_limit: float = _rule(_positive, 2.0)
    burst_limit: int = _rule(_positive, 4)


@dataclass(frozen=True, kw_only=True)
class UsagePlanSettings:
    """Throttle and quota of one usage plan (API Gateway limits apply per API key).

    A key's throttle must not exceed the stage's (checked in `ApiSettings.problems`): above it, the per-key limit
    never bites and one key can take the whole stage from every other caller. The defaults, 2 requests/s and a
    burst of 4, are below the stage's default 5 and 10, so two keys at full rate still leave room for a third.
    """

    throttle_rate_limit: float = _rule(_positive, 2.0)
    throttle_burst_limit: int = _rule(_positive, 4)
    quota_limit: int = _rule(_positive, 1000)
    quota_period: str = _rule(_one_of("DAY", "WEEK", "MONTH"), "DAY")
    quota_offset: int = _rule(_non_negative, 0)
    method_throttles: dict[str, ThrottleSettings] = _rule(
        lambda throttles: next((f"key {k!r} {METHOD_PATH(k)}" for k in throttles if METHOD_PATH(k)), None),
        default_factory=dict,
    )


@dataclass(frozen=True, kw_only=True)
class TenantSettings:
    """One API client: its own API key, in one usage plan, so throttle and quota are per tenant; and what it may
    create keys for (accounts, regions, alias names), so tenants cannot reach each other's keys or aliases."""

    id: str = _rule(_tenant_id)
    plan: str = _rule(_NAME)
    enabled: bool = True
    fixed_key: bool = False
    """True: the key's value is supplied at apply time in the sensitive variable `tenant_api_key_values`
    (it never enters settings or synthesized JSON). Default: API Gateway generates the value."""
    tags: dict[str, str] = _rule(_tag_keys, default_factory=dict)
    allowed_accounts: list[str] = _rule(_each_once(_ACCOUNT), default_factory=list)
    """Accounts the tenant may create keys in. Default (empty): the service's own account only."""
    allowed_regions: list[str] = _rule(_each_once(_REGION), default_factory=list)
    """Regions the tenant may create keys in, within `lambda.allowed_regions` when that is set. Default (empty):
    those of `lambda.allowed_regions` (itself empty: every region)."""
    alias_prefix: str = _rule(_alias_prefix, "")
    """The only alias names the tenant may create: `alias/<prefix>...`. Default (empty): `<id>/`."""

    def __post_init__(self) -> None:
        if self.alias_prefix:
            return
        derived = f"{self.id}/"
        object.__setattr__(self, "alias_prefix", derived)  # frozen: the one place the default is derived
        problem = _alias_prefix(derived)
        if problem:  # only ids KMS or this service reserve ("aws", "alias") get here
            raise _CrossFieldError(
                [("alias_prefix", f"defaults to {derived!r} (from the tenant id), but it {problem}: set alias_prefix")]
            )


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    """Who may reach the API, and which usage plan the service's own API key joins."""

    allowed_source_cidrs: list[str] = _rule(_each(cidr), default_factory=lambda: ["0.0.0.0/0", "::/0"])
    allowed_vpc_endpoint_ids: list[str] = _rule(_each(VPC_ENDPOINT_ID), default_factory=list)
    """Set: the API is PRIVATE, served through these interface VPC endpoints only (CIDRs then apply to
    `aws:VpcSourceIp`). Only requests to a private API carry `aws:SourceVpce`, so a REGIONAL API whose resource
    policy required it would deny every request. Default: a REGIONAL API."""
    usage_plan: str = _rule(_NAME, "default")
    api_key_source: str = _rule(_one_of("HEADER", "AUTHORIZER"), "HEADER")
    """HEADER: callers send `x-api-key`. AUTHORIZER: callers send `Authorization: Bearer <token>` and the
    token authorizer supplies their tenant's key."""
    authorizer_ttl: int = _rule(_between(0, 3600), 60)
    """Seconds API Gateway caches an authorizer decision (also how long a revoked token keeps working)."""
    access_logs: bool = True
    manage_account_cloudwatch_role: bool = True
    """Create the account-level API Gateway CloudWatch role that access and execution logs need (one per
    account and region)."""
    throttle_rate_limit: float = _rule(_positive, 5.0)
    """Stage-wide default method throttle (all callers together); usage plans throttle each key within it.
    5 matches KMS's default CreateKey quota per account and region: more would only turn into 5XX."""
    throttle_burst_limit: int = _rule(_positive, 10)

    @property
    def private(self) -> bool:
        """Whether the API is PRIVATE (reachable through `allowed_vpc_endpoint_ids` only)."""
        return bool(self.allowed_vpc_endpoint_ids)

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        """`(key, problem)` for plans whose per-key throttle exceeds the stage's, and for a custom domain on a
        private API; either would leave a setting that silently does nothing (or denies everything)."""
        found: list[tuple[str, str]] = []
        stage = {
            "rate": (self.throttle_rate_limit, "{:g} requests/s", "api.throttle_rate_limit"),
            "burst": (self.throttle_burst_limit, "a burst of {:g}", "api.throttle_burst_limit"),
        }
        for name, plan in settings.usage_plans.items():
            if plan is None:  # invalid, already reported
                continue
            limits = [
                (f"usage_plans.{name}.throttle_rate_limit", "rate", plan.throttle_rate_limit),
                (f"usage_plans.{name}.throttle_burst_limit", "burst", plan.throttle_burst_limit),
            ]
            for path, throttle in sorted(plan.method_throttles.items()):
                key = f'usage_plans.{name}.method_throttles."{path}"'
                limits += [
                    (f"{key}.rate_limit", "rate", throttle.rate_limit),
                    (f"{key}.burst_limit", "burst", throttle.burst_limit),
                ]
            for key, kind, value in limits:
                limit, shown, stage_key = stage[kind]
                if value > limit:
                    found.append(
                        (
                            key,
                            f"plan {name!r} gives each key {shown.format(value)}, more than the stage's "
                            f"{limit:g} ({stage_key}): the plan's limit would never bite and one key could take "
                            f"the whole stage from every other caller; set at most {limit:g}",
                        )
                    )
        if self.private and settings.domain.name:
            found.append(
                (
                    "domain.name",
                    "cannot serve a PRIVATE API (api.allowed_vpc_endpoint_ids is set): the custom "
                    "domain built here is REGIONAL (regional certificate and endpoint), and a private API is "
                    "reached through its VPC endpoints only; remove one of the two settings",
                )
            )
        return found


@dataclass(frozen=True, kw_only=True)
class LambdaSettings:
    """The key-factory function and what it may do."""

    runtime: str = _rule(_one_of("python3.12", "python3.13"), "python3.13")
    memory_size: int = _rule(_between(128, 10240), 256)
    timeout: int = _rule(_between(3, 29), 20)
    cross_account_role_name: str = _rule(_ROLE, "kms-key-generator-cross-account")
    allowed_accounts: list[str] = _rule(_each(_ACCOUNT), default_factory=list)
    allowed_regions: list[str] = _rule(_each(_REGION), default_factory=list)
    reserved_concurrency: int = _rule(
        lambda value: None if value == -1 or 1 <= value <= 1000 else "must be -1 (unreserved) or between 1 and 1000",
        10,
    )
    """Concurrent executions reserved for (and capping) the key generator and the token authorizer; the
    rotation function gets 2. -1: no reservation for any function (accounts whose concurrency quota is 10)."""

    @property
    def rotation_concurrency(self) -> int:
        """Rotation runs one step at a time; 2 leaves room for the destroy-time cleanup during a scheduled
        run. None reserved when the account can reserve none."""
        return -1 if self.reserved_concurrency == -1 else 2


@dataclass(frozen=True, kw_only=True)
class ObservabilitySettings:
    """Execution logs, metrics, X-Ray, alarms and the dashboard (access logs are `api.access_logs`)."""

    execution_logging: str = _rule(_one_of("ERROR", "INFO", "OFF"), "ERROR")
    """API Gateway execution log level. Full request/response data tracing stays off: bodies carry keys."""
    metrics: bool = True
    """Per-method CloudWatch metrics for the stage."""
    tracing: bool = True
    """X-Ray tracing on the stage and on every Lambda."""
    alarms: bool = True
    alarm_emails: list[str] = _rule(_each(_EMAIL), default_factory=list)
    """Addresses subscribed to the alarm topic (each must confirm by e-mail). Default: none."""
    anomaly_band_width: float = _rule(_between(1, 10), 2.0)
    """Standard deviations of the 5XX anomaly-detection band; lower alarms sooner."""
    client_error_threshold: int = _rule(_positive, 100)
    """4XX responses in 5 minutes that count as a spike."""
    dashboard: bool = True


@dataclass(frozen=True, kw_only=True)
class DomainSettings:
    """A custom domain in front of the stage (ACM certificate, TLS 1.2). Default: none."""

    name: str = _rule(lambda value: value and DNS_NAME(value), "")
    """e.g. keys.example.com. Empty: the API is reached on its execute-api hostname only."""
    hosted_zone_id: str = _rule(lambda value: value and _ZONE_ID(value), "")
    """Route 53 zone of `name`: gets the certificate's validation records and an alias record. Empty: create
    the validation CNAME yourself while the apply waits (see README)."""
    base_path: str = _rule(lambda value: value and _BASE_PATH(value), "")
    """Path segment the stage is mapped under. Empty: the domain's root."""
    disable_execute_api_endpoint: bool = False
    """Serve only through the custom domain."""


@dataclass(frozen=True, kw_only=True)
class WafSettings:
    """A WAFv2 web ACL on the stage: AWS managed rules plus a per-IP rate limit."""

    enabled: bool = True
    rate_limit: int = _rule(_between(10, 2_000_000_000), 1000)
    """Requests one IP may send in 5 minutes before it is blocked."""


@dataclass(frozen=True, kw_only=True)
class RotationSettings:
    """API-key rotation through Secrets Manager; when on, the rotation Lambda owns every API key."""

    enabled: bool = True
    days: int = _rule(_between(1, 90), 30)
    grace_hours: int = _rule(lambda hours: None if hours >= 1 else "must be >= 1", 24)
    """How long a replaced key keeps working after a newer one is published: the rotation Lambda never deletes
    a key sooner, however soon the next rotation comes."""

    def __post_init__(self) -> None:
        # At or above the period, a scheduled rotation would find the previous key still in its grace: every
        # rotation would keep one more key until the rotation Lambda's cap of live keys stops rotations.
        if self.grace_hours >= self.days * 24:
            raise _CrossFieldError(
                [
                    (
                        "grace_hours",
                        f"must be below rotation.days * 24 ({self.days * 24}), so the previous key leaves its grace "
                        f"before the next scheduled rotation, got {self.grace_hours}",
                    )
                ]
            )


@dataclass(frozen=True, kw_only=True)
class StateSettings:
    """Remote Terraform state of the service stack: by default (`backend = "s3"`) the bucket and lock table the
    remote-state stack creates; with `backend = "hcp"` an HCP Terraform workspace, and then the remote-state stack
    is not synthesized and the S3 keys (`bucket`, `lock_table`, `key`, `use_lockfile`, `kms_key_id`) are unused."""

    backend: str = _rule(_one_of("s3", "hcp"), "s3")
    hcp_organization: str = _rule(lambda value: value and _HCP_ORGANIZATION(value), "")
    hcp_workspace: str = _rule(lambda value: value and _HCP_WORKSPACE(value), "")
    """One workspace per environment (per settings file): its own state, runs, variables and permissions."""
    bucket: str = _rule(_BUCKET, "kms-key-generator-tfstate")
    lock_table: str = _rule(_TABLE, "kms-key-generator-tflock")
    key: str = _rule(matches(r"[\w./-]{1,1024}", "an S3 object key"), "kms-key-generator/terraform.tfstate")
    use_lockfile: bool = True
    kms_key_id: str = _rule(lambda value: value and _STATE_KMS_KEY(value), "")
    """The state key as the service stack's S3 backend names it (`kms_key_id`): the remote-state stack's
    `state_kms_key_arn` output, its key id, or its alias (name or ARN). Without it Terraform sends `AES256` and
    the state, which holds API key values, would be written under S3's key, not ours. Default: the alias
    `alias/<service.name>-tfstate`, known at synth time (the key's ARN is not until the state stack exists)."""
    deletion_protection: bool = True
    """DynamoDB deletion protection on the lock table and the tokens table: a stray `terraform destroy` or
    `DeleteTable` fails instead of losing the lock or every issued token (README: destroying)."""

    def backend_kms_key_id(self, service_name: str) -> str:
        """`kms_key_id` for the S3 backend: the setting, else the state key's alias."""
        return self.kms_key_id or Names(service_name, "").state_kms_alias

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        """`(key, problem)` for an HCP backend without its workspace, HCP keys under the S3 backend (a forgotten
        `backend = "hcp"` would silently keep state in S3), and a `kms_key_id` the bucket would refuse."""
        hcp = {"state.hcp_organization": self.hcp_organization, "state.hcp_workspace": self.hcp_workspace}
        if self.backend == "hcp":
            found = [(key, 'is required when state.backend = "hcp"') for key, value in hcp.items() if not value]
            found += [
                (key, 'is imported by the remote-state stack, which state.backend = "hcp" does not synthesize')
                for key, value in (
                    ("adopt.state_bucket", settings.adopt.state_bucket),
                    ("adopt.state_lock_table", settings.adopt.state_lock_table),
                )
                if value
            ]
            return found
        found = [
            (key, 'only applies with state.backend = "hcp" (the backend is "s3")')
            for key, value in hcp.items()
            if value
        ]
        return found + self._kms_key_problems(settings)

    def _kms_key_problems(self, settings: Settings) -> list[tuple[str, str]]:
        """`kms_key_id` naming an alias that is not the state key's, or another region's: the bucket policy refuses
        every object not encrypted under the state key, so the first write would fail."""
        alias = Names(settings.service.name, "").state_kms_alias
        given = self.kms_key_id
        if "alias/" not in given:
            return []
        arn = given.split(":")
        if given.startswith("arn:") and arn[3] != settings.service.region:
            return [
                (
                    "state.kms_key_id",
                    f"is in region {arn[3]!r}, but the state bucket and its key are in "
                    f"{settings.service.region!r} (service.region)",
                )
            ]
        if given.split(":")[-1] != alias:
            return [
                (
                    "state.kms_key_id",
                    f"names {given.split(':')[-1]!r}, but the state key's alias is {alias!r} "
                    "(from service.name): the bucket policy refuses objects under any other key",
                )
            ]
        return []


@dataclass(frozen=True, kw_only=True)
class AdoptSettings:
    """Live resources of the original Terraform modules that the first apply imports instead of creating.

    Each key set emits a Terraform `import` block, so the apply adopts the live object (same id, same key
    value, same logs) instead of failing on a name conflict or creating a twin. Empty: adopt nothing.
    Named resources must carry the name this app derives (else Terraform would replace them).
    """

    rest_api_id: str = _rule(_APIGW_ID, "")
    """Also imports its `POST` method and the stage `service.stage`; needs `resource_id`."""
    resource_id: str = _rule(_APIGW_ID, "")
    """The `/keys` resource of `rest_api_id`."""
    usage_plan_id: str = _rule(_APIGW_ID, "")
    """Imported as the plan `api.usage_plan` names."""
    api_key_id: str = _rule(_APIGW_ID, "")
    """Static-key mode only (`rotation.enabled = false`)."""
    log_group_names: list[str] = _rule(_each(_LOG_GROUP), default_factory=list)
    ssm_parameter_name: str = _rule(_SSM_PATH, "")
    lambda_function_name: str = _rule(_FUNCTION, "")
    execution_role_name: str = _rule(_ROLE, "")
    """Only when the original's role has the name this app gives it (otherwise there is no conflict)."""
    state_bucket: str = _rule(_BUCKET, "")
    state_lock_table: str = _rule(_TABLE, "")

    def problems(self, settings: Settings) -> list[tuple[str, str]]:
        """`(key, problem)` for adoptions that would conflict, replace what they adopt, or have no target."""
        names = Names(settings.service.name, settings.service.stage)
        found: list[tuple[str, str]] = []
        if self.rest_api_id and not self.resource_id:
            found.append(
                (
                    "adopt.rest_api_id",
                    "needs a valid adopt.resource_id too (the id of its /keys resource): "
                    "creating /keys under the adopted API would conflict with the existing one",
                )
            )
        if self.resource_id and not self.rest_api_id:
            found.append(
                (
                    "adopt.resource_id",
                    "needs a valid adopt.rest_api_id too: the resource is imported as <rest_api_id>/<resource_id>",
                )
            )
        if self.api_key_id and settings.rotation.enabled:
            found.append(
                (
                    "adopt.api_key_id",
                    "adopting an API key needs rotation.enabled = false (the static-key "
                    "mode the original ran): with rotation on, the rotation Lambda creates and owns every key, "
                    "so Terraform has no API key to adopt it into",
                )
            )
        groups = [names.function_log_group]
        if settings.rotation.enabled:
            groups.append(f"/aws/lambda/{names.rotation_function}")
        for index, group in enumerate(self.log_group_names):
            if group not in groups:
                found.append(
                    (
                        "adopt.log_group_names",
                        f"item {index} ({group!r}) is not a log group this stack "
                        f"manages ({', '.join(groups)}): a group can only be adopted under its own name",
                    )
                )
            elif group in self.log_group_names[:index]:
                found.append(("adopt.log_group_names", f"item {index} ({group!r}) is listed twice"))
        derived = {
            "ssm_parameter_name": (names.ssm_parameter, "service.name"),
            "lambda_function_name": (names.function, "service.name"),
            "execution_role_name": (names.execution_role, "service.name"),
            "state_bucket": (settings.state.bucket, "state.bucket"),
            "state_lock_table": (settings.state.lock_table, "state.lock_table"),
        }
        for key, (expected, source) in derived.items():
            given = getattr(self, key)
            if given and given != expected:
                found.append(
                    (
                        f"adopt.{key}",
                        f"is {given!r}, but this stack names it {expected!r} (from {source}): "
                        "adopted under another name it would be replaced, not kept; make the names agree",
                    )
                )
        return found


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the app needs; built only by `load_settings`."""

    service: ServiceSettings = field(default_factory=ServiceSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    usage_plans: dict[str, UsagePlanSettings] = _rule(
        lambda plans: None if plans else "must define at least one plan",
        default_factory=lambda: {"default": UsagePlanSettings()},
    )
    function: LambdaSettings = field(default_factory=LambdaSettings, metadata={"toml": "lambda"})
    rotation: RotationSettings = field(default_factory=RotationSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    domain: DomainSettings = field(default_factory=DomainSettings)
    waf: WafSettings = field(default_factory=WafSettings)
    tenants: list[TenantSettings] = field(default_factory=list)
    state: StateSettings = field(default_factory=StateSettings)
    tags: dict[str, str] = _rule(_tag_keys, default_factory=dict)
    adopt: AdoptSettings = field(default_factory=AdoptSettings)

    def __post_init__(self) -> None:
        known = ", ".join(self.usage_plans)
        problems = []
        if self.api.usage_plan not in self.usage_plans:
            problems.append(("api.usage_plan", f"names unknown plan {self.api.usage_plan!r} (known: {known})"))
        seen: set[str] = set()
        for index, tenant in enumerate(self.tenants):
            if tenant is None:  # invalid, already reported
                continue
            if tenant.id in seen:
                problems.append((f"tenants[{index}].id", f"duplicate tenant id {tenant.id!r}"))
            seen.add(tenant.id)
            if tenant.plan not in self.usage_plans:
                problems.append((f"tenants[{index}].plan", f"names unknown plan {tenant.plan!r} (known: {known})"))
        problems.extend(self._tenant_scope_problems())
        if len(self.tenants) + self.service_api_keys > MAX_API_KEYS:
            problems.append(
                (
                    "tenants",
                    f"{len(self.tenants)} tenants + {self.service_api_keys} service key(s) exceed the "
                    f"{MAX_API_KEYS} API keys a region allows",
                )
            )
        if (self.domain.hosted_zone_id or self.domain.base_path or self.domain.disable_execute_api_endpoint) and not (
            self.domain.name
        ):
            problems.append(("domain.name", "is required when any other domain key is set"))
        problems.extend(self.api.problems(self))
        problems.extend(self.state.problems(self))
        problems.extend(self.adopt.problems(self))
        if problems:
            raise _CrossFieldError(problems)

    def _tenant_scope_problems(self) -> list[tuple[str, str]]:
        """Tenants stay inside the service's regions, and no tenant's alias prefix contains another's (else one
        tenant could create, and so squat or shadow, alias names the other owns)."""
        found: list[tuple[str, str]] = []
        tenants = [(index, tenant) for index, tenant in enumerate(self.tenants) if tenant is not None]
        regions = self.function.allowed_regions
        for index, tenant in tenants:
            for position, region in enumerate(tenant.allowed_regions):
                if regions and region not in regions:
                    found.append(
                        (
                            f"tenants[{index}].allowed_regions",
                            f"item {position} ({region!r}) is not in lambda.allowed_regions ({', '.join(regions)})",
                        )
                    )
        # Sorted (case-folded, as KMS may compare alias names), every prefix is followed directly by the ones
        # that start with it: the scan is linear, not quadratic, for the 10,000 tenants a region allows.
        ordered = sorted(tenants, key=lambda item: (item[1].alias_prefix.casefold(), item[0]))
        for position, (index, tenant) in enumerate(ordered):
            prefix = tenant.alias_prefix.casefold()
            for other_index, other in ordered[position + 1 :]:
                if not other.alias_prefix.casefold().startswith(prefix):
                    break
                found.append(
                    (
                        f"tenants[{other_index}].alias_prefix",
                        f"{other.alias_prefix!r} starts with "
                        f"{tenant.alias_prefix!r}, the prefix of tenant {tenant.id!r} (tenants[{index}]): "
                        "each tenant's aliases must be out of every other tenant's reach",
                    )
                )
        return found

    @property
    def service_api_keys(self) -> int:
        """Live keys of the service itself: up to the rotation's cap while rotating, else the one static key."""
        return ROTATION_MAX_LIVE_KEYS if self.rotation.enabled else 1


class SettingsError(ValueError):
    """Raised with every problem in a settings file, one `file: key: problem` line each."""


class _CrossFieldError(Exception):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        item = typing.get_args(tp)[0]
        return "an array of tables" if dataclasses.is_dataclass(item) else f"a list of {_type_name(item)}"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[tp]


def _has_type(value: Any, tp: Any) -> bool:
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(tp)
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, typing.get_args(tp)[0]) for v in value)
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    return isinstance(value, tp)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _build(cls: Any, data: dict[str, Any], path: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from `data`, appending `key: problem` texts to `problems`."""
    hints = typing.get_type_hints(cls)
    fields = {f.metadata.get("toml", f.name): f for f in dataclasses.fields(cls)}
    for unknown in sorted(set(data) - set(fields)):
        problems.append(f"{path}{unknown}: unknown key (allowed: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    for toml_name, f in fields.items():
        if toml_name not in data:
            if _required(f):
                problems.append(f"{path}{toml_name}: required")
            continue
        key, value, tp = f"{path}{toml_name}", data[toml_name], hints[f.name]
        if not _has_type(value, tp):
            problems.append(f"{key}: must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
            continue
        if dataclasses.is_dataclass(tp):
            value = _build(tp, value, f"{key}.", problems)
            if value is None:  # invalid, already reported: its default stands in, so the other checks still run
                continue
        elif typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            # Invalid items stay as None placeholders so later messages keep their indices.
            value = [_build(typing.get_args(tp)[0], item, f"{key}[{i}].", problems) for i, item in enumerate(value)]
        elif typing.get_origin(tp) is dict:
            item_type = typing.get_args(tp)[1]
            built = {}
            for name, item in value.items():
                if dataclasses.is_dataclass(item_type):
                    if not isinstance(item, dict):
                        problems.append(f"{key}.{name}: must be a table")
                        continue
                    built[name] = _build(item_type, item, f"{key}.{name}.", problems)
                elif not _has_type(item, item_type):
                    problems.append(f"{key}.{name}: must be {_type_name(item_type)}, got {item!r}")
                else:
                    built[name] = item
            value = built
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            got = "" if isinstance(value, (dict, list)) else f", got {value!r}"
            problems.append(f"{key}: {problem}{got}")
            continue
        kwargs[f.name] = value
    if any(_required(f) and f.name not in kwargs for f in dataclasses.fields(cls)):
        return None  # a required key is missing or invalid: already reported
    try:
        return cls(**kwargs)
    except _CrossFieldError as error:
        problems.extend(f"{path}{key}: {message}" for key, message in error.problems)
        return None


def settings_file(root: Path | None = None) -> Path:
    """The settings file a synth reads: `$KMSKG_CONFIG`, else `config/default.toml`. A relative `$KMSKG_CONFIG` is
    taken from `root`, else from the working directory, where the synth runs."""
    return (root or Path()) / (os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate settings from `path`, else `settings_file()`."""
    source = Path(path or settings_file())
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{source}: settings file not found (set {CONFIG_ENV_VAR} to a TOML file)") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{source}: not valid TOML: {error}") from None
    problems: list[str] = []
    settings: Settings = _build(Settings, data, "", problems)
    if problems:
        raise SettingsError("\n".join(f"{source}: {problem}" for problem in problems))
    return settings
