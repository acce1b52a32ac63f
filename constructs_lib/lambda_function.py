"""A Python Lambda function with its own log group and least-privilege execution role.

Resources: the function's log group (`cloudwatch.LogGroup`, never expires), IAM execution role and
inline policy (write to that log group only, plus the statements the caller passes or grants add through
`add_to_role_policy`), the code asset (`TerraformAsset`, zipped by cdktf) and the `aws_lambda_function`. With
`LambdaHardening`: the log group and environment encrypted with a customer key, reserved concurrency and X-Ray
tracing, each with the IAM rights it needs. No dead-letter queue: every caller (API Gateway, the authorizer,
Secrets Manager, the destroy-time cleanup) invokes synchronously and sees the error itself; a queue would never
receive a message.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction as AwsLambdaFunction
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunctionEnvironment,
    LambdaFunctionTracingConfig,
)
from constructs import Construct

from . import policy
from .cdk import AssetType, TerraformAsset
from .cloudwatch import LogGroup, LogGroupProps
from .rules import FUNCTION_NAME_PATTERN, ROLE_NAME_PATTERN
from .validation import Problems, between, matches, non_empty

SOURCE_MTIME = 315532800  # 1980-01-01, the earliest zip timestamp: staged files get it so archives are reproducible

_FUNCTION_NAME = matches(FUNCTION_NAME_PATTERN, "1-64 letters, digits, '-' or '_' (a name, not an ARN)")
_ROLE_NAME = matches(ROLE_NAME_PATTERN, "an IAM role name (1-64 of letters, digits and +=,.@_-)")
_HANDLER = matches(r"[A-Za-z_]\w*\.[A-Za-z_]\w*", "module.function, e.g. handler.lambda_handler")
_RUNTIME = matches(r"python3\.[0-9]+", "a Python runtime such as python3.13")
_VARIABLE = matches(r"[A-Za-z][A-Za-z0-9_]*", "an environment variable name (a letter, then letters, digits or _)")


def _folder(path: Path) -> str | None:
    return None if path.is_dir() else "must be an existing folder"


def _concurrency(value: int) -> str | None:
    return None if value == -1 or value >= 0 else "must be -1 (none reserved) or >= 0"


@dataclass(frozen=True, kw_only=True)
class LambdaCode:
    """Where a function's sources are, and where they are staged for zipping."""

    source_dir: Path
    """Folder holding the handler module; only its `*.py` files are packaged (no caches, no tests)."""
    staging_dir: Path
    """Scratch folder the sources are copied to before zipping, so stray files never change the asset."""
    shared_dir: Path | None = None
    """Folder of modules every function imports (e.g. structured logging), packaged next to the handler.
    Default: none."""
    generated_files: Mapping[str, str] = field(default_factory=dict)
    """Files made at synth time from settings, by name (e.g. `tenants.json`), written as UTF-8 next to the
    handler: for configuration too large for the 4 KB of a Lambda environment. Written like the sources
    (fixed mtime and mode), so equal content gives a byte-identical zip. Default: none."""


@dataclass(frozen=True, kw_only=True)
class LambdaHardening:
    """Production settings every function of the service shares."""

    kms_key_arn: str
    """Encrypts the environment variables and the log group."""
    reserved_concurrency: int
    """Executions reserved for, and capping, the function; -1: none reserved."""
    tracing: bool
    """X-Ray active tracing."""


@dataclass(frozen=True, kw_only=True)
class LambdaFunctionProps:
    function_name: str
    role_name: str
    code: LambdaCode
    handler: str = "handler.lambda_handler"
    runtime: str = "python3.13"
    memory_size: int = 256
    timeout: int = 20
    environment: dict[str, str] = field(default_factory=dict)
    """Environment variables. Default: none. Never put secrets here."""
    policy_statements: tuple[dict[str, Any], ...] = ()
    """Extra IAM statements for the execution role. Default: logging only."""
    hardening: LambdaHardening | None = None
    """Default: AWS-owned encryption, no reserved concurrency, no tracing."""


def stage_sources(staging_dir: Path, *source_dirs: Path, generated: Mapping[str, str] | None = None) -> Path:
    """Copy `*.py` of `source_dirs` and write the `generated` files to a clean `staging_dir`, all with fixed
    mtimes and modes; return `staging_dir`. A name given twice is an error, never a silent overwrite."""
    if staging_dir.exists():
        shutil.rmtree(staging_dir)
    staging_dir.mkdir(parents=True)
    for source in sorted(path for folder in source_dirs for path in folder.glob("*.py")):
        target = staging_dir / source.name
        if target.exists():
            raise ValueError(f"{source.name} is both a function source and a shared module")
        shutil.copyfile(source, target)
        _fix_metadata(target)
    for name, content in sorted((generated or {}).items()):
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"generated file name {name!r} must be a plain file name (no folders)")
        target = staging_dir / name
        if target.exists():
            raise ValueError(f"generated file {name} would replace a function source")
        target.write_bytes(content.encode("utf-8"))
        _fix_metadata(target)
    return staging_dir


def _fix_metadata(path: Path) -> None:
    """Mode and mtime are part of a zip entry: fixed, they keep the archive (and its asset hash) reproducible."""
    path.chmod(0o644)
    os.utime(path, (SOURCE_MTIME, SOURCE_MTIME))


def _validate(props: LambdaFunctionProps) -> None:
    problems = Problems("LambdaFunction")
    problems.check("function_name", props.function_name, _FUNCTION_NAME)
    problems.check("role_name", props.role_name, _ROLE_NAME)
    problems.check("handler", props.handler, _HANDLER)
    problems.check("runtime", props.runtime, _RUNTIME)
    problems.check("memory_size", props.memory_size, between(128, 10240))
    problems.check("timeout", props.timeout, between(1, 900))
    problems.check_keys("environment", props.environment, _VARIABLE)
    problems.check("code.source_dir", props.code.source_dir, _folder)
    if props.hardening:
        problems.check("hardening.kms_key_arn", props.hardening.kms_key_arn, non_empty)
        problems.check("hardening.reserved_concurrency", props.hardening.reserved_concurrency, _concurrency)
    problems.raise_if_any()


class LambdaFunction(Construct):
    """Exposes `function`, `role` and `log_group` (the resources), `function_name`, `arn`, `invoke_arn`,
    `log_group_name`, `role_arn` and `role_name`; `add_to_role_policy(...)` and `add_environment(...)` complete the
    function after it exists."""

    def __init__(self, scope: Construct, id: str, props: LambdaFunctionProps) -> None:
        _validate(props)
        super().__init__(scope, id)
        self._hardening = hardening = props.hardening
        self.log_group = LogGroup(
            self,
            "logs",
            LogGroupProps(
                name=f"/aws/lambda/{props.function_name}", kms_key_arn=hardening.kms_key_arn if hardening else None
            ),
        ).log_group

        self.role = IamRole(
            self, "execution-role", name=props.role_name, assume_role_policy=policy.assume_role("lambda.amazonaws.com")
        )
        self._statements = [
            policy.statement(
                "WriteOwnLogGroup",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [f"{self.log_group.arn}:*"],
            ),
            *props.policy_statements,
        ]
        self._execution_policy = IamRolePolicy(
            self,
            "execution-policy",
            name=f"{props.role_name}-policy",
            role=self.role.id,
            policy=self._policy_document(),
        )

        staged = stage_sources(
            props.code.staging_dir,
            props.code.source_dir,
            *filter(None, [props.code.shared_dir]),
            generated=props.code.generated_files,
        )
        asset = TerraformAsset(self, "code", path=str(staged), type=AssetType.ARCHIVE)
        self._environment = dict(props.environment)
        self.function = AwsLambdaFunction(
            self,
            "function",
            function_name=props.function_name,
            role=self.role.arn,
            handler=props.handler,
            runtime=props.runtime,
            memory_size=props.memory_size,
            timeout=props.timeout,
            # The asset path embeds its content hash, so new code is a new filename and Terraform updates it.
            filename=asset.path,
            environment=LambdaFunctionEnvironment(variables=props.environment) if props.environment else None,
            kms_key_arn=hardening.kms_key_arn if hardening and props.environment else None,
            reserved_concurrent_executions=hardening.reserved_concurrency if hardening else None,
            tracing_config=LambdaFunctionTracingConfig(mode="Active") if hardening and hardening.tracing else None,
            # Lambda creates its log group on first write if missing; depending on ours wins that race, so
            # the group always has our retention. The role's policy comes first too: the rotation function
            # runs during the same apply and must find its rights (and its key's) in place.
            depends_on=[self.log_group, self._execution_policy],
        )

    @property
    def function_name(self) -> str:
        return self.function.function_name

    @property
    def arn(self) -> str:
        return self.function.arn

    @property
    def invoke_arn(self) -> str:
        """What API Gateway integrations and authorizers call."""
        return self.function.invoke_arn

    @property
    def log_group_name(self) -> str:
        return self.log_group.name

    @property
    def role_arn(self) -> str:
        return self.role.arn

    @property
    def role_name(self) -> str:
        return self.role.name

    def add_to_role_policy(self, *statements: dict[str, Any]) -> None:
        """Add statements to the execution role's inline policy, after those of `policy_statements` and any added
        before (the hardening statements stay last). Grants (`SecureParameter.grant_write`, ...) call this."""
        self._statements.extend(statements)
        self._execution_policy.policy = self._policy_document()

    def add_environment(self, variables: Mapping[str, str]) -> None:
        """Add (or replace) environment variables: for values known only once other resources exist (what names
        the function's caller, say), which would otherwise make a dependency cycle."""
        problems = Problems("LambdaFunction.add_environment")
        problems.check_keys("variables", variables, _VARIABLE)
        problems.raise_if_any()
        had_environment = bool(self._environment)
        self._environment.update(variables)
        self.function.put_environment(variables=dict(self._environment))
        if self._hardening and not had_environment:
            self.function.kms_key_arn = self._hardening.kms_key_arn

    def _policy_document(self) -> str:
        hardening = _hardening_statements(self._hardening) if self._hardening else ()
        return policy.document(*self._statements, *hardening)


def _hardening_statements(hardening: LambdaHardening) -> tuple[dict[str, Any], ...]:
    """What the execution role needs for its encrypted environment and its traces."""
    statements = [policy.statement("DecryptEnvironment", ["kms:Decrypt"], hardening.kms_key_arn)]
    if hardening.tracing:
        # X-Ray has no resource-level permissions for writing traces.
        statements.append(policy.statement("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"))
    return tuple(statements)
