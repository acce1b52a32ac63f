"""API-key rotation through Secrets Manager: the secret, its rotation Lambda and schedule.

Resources: KMS key + alias for the secret (rotation on), the Secrets Manager secret tagged `KeyName`,
`UsagePlan`, `Project`, `CostCategory`, the rotation Lambda (`lambda_function.LambdaFunction`: own role,
own never-expiring log group), a Lambda permission for `secretsmanager.amazonaws.com` scoped to this
secret, the rotation schedule (which also runs the first rotation right away), and a CRUD-scoped
invocation of the function whose destroy deletes the keys rotation created.

Ownership: once rotation is on, the rotation Lambda owns every API key of the service (it creates,
attaches and, after their grace, deletes them) and keeps the SSM parameter current. Terraform owns the
secret, the schedule, the usage plans and the parameter's existence, never a key or a key value, so no
number of rotations makes `terraform plan` drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from cdktf_cdktf_provider_aws.secretsmanager_secret_rotation import (
    SecretsmanagerSecretRotation,
    SecretsmanagerSecretRotationRotationRules,
)
from constructs import Construct

from . import policy
from .cdk import Fn
from .kms import ServiceKeyProps, service_key
from .lambda_function import LambdaCode, LambdaFunction, LambdaFunctionProps, LambdaHardening


@dataclass(frozen=True, kw_only=True)
class ApiKeyRotationProps:
    secret_name: str
    key_name_prefix: str
    """New API keys are named `<prefix>-<token prefix>` (the secret's `KeyName` tag)."""
    usage_plan_ids: tuple[str, ...]
    """Plans every new key joins (the secret's `UsagePlan` tag, space-separated: tag values allow no commas)."""
    rotation_days: int
    ssm_parameter_name: str
    ssm_parameter_arn: str
    ssm_kms_key_arn: str
    function_name: str
    role_name: str
    code: LambdaCode
    runtime: str
    hardening: LambdaHardening | None = None
    kms_alias: str
    project: str
    cost_category: str
    account_id: str
    partition: str
    region: str


class ApiKeyRotation(Construct):
    """Exposes `secret`, `kms_key` and `function` (a `LambdaFunction`)."""

    def __init__(self, scope: Construct, id: str, props: ApiKeyRotationProps) -> None:
        super().__init__(scope, id)
        self.kms_key = service_key(
            self,
            ServiceKeyProps(
                description=f"Encrypts the API key secret {props.secret_name}",
                alias=props.kms_alias,
                service="secretsmanager",
                sid_prefix="SecretsManager",
                account_id=props.account_id,
                partition=props.partition,
                region=props.region,
            ),
        )
        self.secret = SecretsmanagerSecret(
            self,
            "secret",
            name=props.secret_name,
            description="The service's current API key ({id, value, ...}); written only by its rotation Lambda",
            kms_key_id=self.kms_key.arn,
            recovery_window_in_days=7,
            tags={
                "KeyName": props.key_name_prefix,
                "UsagePlan": Fn.join(" ", list(props.usage_plan_ids)),
                "Project": props.project,
                "CostCategory": props.cost_category,
            },
        )
        api = f"arn:{props.partition}:apigateway:{props.region}::"
        self.function = LambdaFunction(
            self,
            "function",
            LambdaFunctionProps(
                function_name=props.function_name,
                role_name=props.role_name,
                code=props.code,
                runtime=props.runtime,
                timeout=60,
                hardening=props.hardening,
                environment={
                    "SSM_PARAMETER_NAME": props.ssm_parameter_name,
                    "SSM_KMS_KEY_ID": props.ssm_kms_key_arn,
                },
                policy_statements=(
                    policy.statement(
                        "RotateThisSecret",
                        [
                            "secretsmanager:DescribeSecret",
                            "secretsmanager:GetSecretValue",
                            "secretsmanager:PutSecretValue",
                            "secretsmanager:UpdateSecretVersionStage",
                        ],
                        self.secret.arn,
                    ),
                    policy.statement(
                        "ManageApiKeys",
                        ["apigateway:POST", "apigateway:GET", "apigateway:DELETE"],
                        [f"{api}/apikeys", f"{api}/apikeys/*", f"{api}/tags/*"],
                    ),
                    policy.statement(
                        "AttachKeysToUsagePlans",
                        ["apigateway:POST", "apigateway:GET"],
                        [f"{api}/usageplans/{plan}/keys*" for plan in props.usage_plan_ids],
                    ),
                    policy.statement("UpdateSsmParameter", ["ssm:PutParameter"], props.ssm_parameter_arn),
                    policy.statement(
                        "UseKeys",
                        ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                        [self.kms_key.arn, props.ssm_kms_key_arn],
                    ),
                ),
            ),
        )
        permission = LambdaPermission(
            self,
            "invoke-permission",
            statement_id="AllowSecretsManagerRotation",
            action="lambda:InvokeFunction",
            function_name=self.function.function.function_name,
            principal="secretsmanager.amazonaws.com",
            source_arn=self.secret.arn,
        )
        # Terraform never manages the keys rotation creates, so `destroy` would orphan them: this
        # invocation is a no-op on create/update and deletes the secret's keys on destroy.
        cleanup = LambdaInvocation(
            self,
            "cleanup-on-destroy",
            function_name=self.function.function.function_name,
            input=Fn.jsonencode({"Cleanup": {"SecretId": self.secret.arn}}),
            lifecycle_scope="CRUD",
        )
        SecretsmanagerSecretRotation(
            self,
            "schedule",
            secret_id=self.secret.id,
            rotation_lambda_arn=self.function.function.arn,
            rotation_rules=SecretsmanagerSecretRotationRotationRules(automatically_after_days=props.rotation_days),
            # Rotation must be able to invoke the function on the first run; on destroy the schedule goes
            # first, so no rotation creates a key after the cleanup ran.
            depends_on=[permission, cleanup],
        )
