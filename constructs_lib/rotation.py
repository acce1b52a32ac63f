"""API-key rotation through Secrets Manager: the secret, its rotation Lambda and schedule.

Resources: KMS key + alias for the secret (rotation on), the Secrets Manager secret tagged `KeyName`,
`Project`, `CostCategory`, the rotation Lambda (`lambda_function.LambdaFunction`: own role,
own never-expiring log group), a Lambda permission for `secretsmanager.amazonaws.com` scoped to this
secret, the rotation schedule (which also runs the first rotation right away), and a CRUD-scoped
invocation of the function whose destroy deletes the keys rotation created.

Ownership: once rotation is on, the rotation Lambda owns every API key of the service (it creates,
attaches and, after their grace, deletes them) and keeps the SSM parameter current. Terraform owns the
secret, the schedule, the usage plans and the parameter's existence, never a key or a key value, so no
number of rotations makes `terraform plan` drift.

Least privilege: the function's role can touch only the keys its own rotations create. It may create a key
only with the tag `RotationSecretArn=<this secret's ARN>` in the CreateApiKey request (and no tag keys but
the four the function writes), read and delete only keys carrying that tag (`aws:ResourceTag`), attach keys
only to the configured usage plans and see which plans hold a key (plan settings, no key values). It may not
list API keys (`GET /apikeys` returns every tenant's key and, with `includeValues`, every value) nor tag
anything (`/tags/*`): the function finds its keys from the secret's versions instead.
`tests/synth/test_least_privilege_rotation.py` proves each rule by evaluating the synthesized policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
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
from .environment import AwsEnvironment
from .kms import ServiceKeyProps, grant_encrypt_decrypt, service_key
from .lambda_function import LambdaCode, LambdaFunction, LambdaFunctionProps, LambdaHardening
from .ssm import SecureParameter
from .validation import Problems, between, matches, non_empty, positive

SECRET_TAG = "RotationSecretArn"
"""The tag the rotation Lambda puts on every key it creates: the secret's ARN, on which its IAM rights hang."""
KEY_TAG_KEYS = ("RotationToken", SECRET_TAG, "Project", "CostCategory")
"""Every tag key the rotation Lambda writes on a key (and so the only ones its role may write)."""


@dataclass(frozen=True, kw_only=True)
class ApiKeyRotationProps:
    secret_name: str
    key_name_prefix: str
    """New API keys are named `<prefix>-<token prefix>` (the secret's `KeyName` tag)."""
    usage_plan_ids: tuple[str, ...]
    """Plans every new key joins (the function's `USAGE_PLAN_IDS`, space-separated)."""
    rotation_days: int
    grace_hours: int
    """How long a replaced key stays valid (the function's `ROTATION_GRACE_HOURS`); below the period."""
    parameter: SecureParameter
    """The SSM parameter the function keeps current with the live key (granted write and its key's use)."""
    function_name: str
    role_name: str
    code: LambdaCode
    runtime: str
    hardening: LambdaHardening | None = None
    kms_alias: str
    project: str
    cost_category: str
    environment: AwsEnvironment
    """The account whose Secrets Manager (in this region) may use the secret's key; the API keys' ARNs."""


def _validate(props: ApiKeyRotationProps) -> None:
    problems = Problems("ApiKeyRotation")
    problems.check("secret_name", props.secret_name, matches(r"[\w/+=.@-]{1,512}", "a Secrets Manager secret name"))
    problems.check("key_name_prefix", props.key_name_prefix, non_empty)
    problems.check("usage_plan_ids", props.usage_plan_ids, non_empty)
    problems.check("rotation_days", props.rotation_days, between(1, 1000))
    problems.check("grace_hours", props.grace_hours, positive)
    if props.grace_hours >= props.rotation_days * 24 > 0:
        problems.add("grace_hours", props.grace_hours, f"must be below rotation_days * 24 ({props.rotation_days * 24})")
    problems.check("project", props.project, non_empty)
    problems.check("cost_category", props.cost_category, non_empty)
    problems.raise_if_any()


class ApiKeyRotation(Construct):
    """Exposes `secret`, `kms_key` and `function` (a `LambdaFunction`), and the values `secret_arn`, `secret_name`,
    `function_name`, `function_arn` and `log_group` (the function's)."""

    def __init__(self, scope: Construct, id: str, props: ApiKeyRotationProps) -> None:
        _validate(props)
        super().__init__(scope, id)
        environment = props.environment
        self.kms_key = service_key(
            self,
            ServiceKeyProps(
                description=f"Encrypts the API key secret {props.secret_name}",
                alias=props.kms_alias,
                service="secretsmanager",
                sid_prefix="SecretsManager",
                environment=environment,
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
                "Project": props.project,
                "CostCategory": props.cost_category,
            },
        )
        api = f"arn:{environment.partition}:apigateway:{environment.region}::"
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
                    "SSM_PARAMETER_NAME": props.parameter.name,
                    "SSM_KMS_KEY_ID": props.parameter.kms_key_arn,
                    "ROTATION_GRACE_HOURS": str(props.grace_hours),
                    # Not a secret tag: the key generator names the secret, and the plans depend (through the
                    # stage and its integration) on the key generator, so a tag would make a dependency cycle.
                    "USAGE_PLAN_IDS": Fn.join(" ", list(props.usage_plan_ids)),
                },
                policy_statements=(
                    policy.statement(
                        "RotateThisSecret",
                        [
                            "secretsmanager:DescribeSecret",
                            "secretsmanager:ListSecretVersionIds",  # how the function finds its keys
                            "secretsmanager:GetSecretValue",
                            "secretsmanager:PutSecretValue",
                            "secretsmanager:UpdateSecretVersionStage",
                        ],
                        self.secret.arn,
                    ),
                    # CreateApiKey carries the tags, so no TagResource (`/tags/*`) right is needed.
                    policy.statement(
                        "CreateKeysTaggedForThisSecret",
                        ["apigateway:POST"],
                        f"{api}/apikeys",
                        condition={
                            "StringEquals": {f"aws:RequestTag/{SECRET_TAG}": self.secret.arn},
                            "ForAllValues:StringEquals": {"aws:TagKeys": list(KEY_TAG_KEYS)},
                        },
                    ),
                    # `/apikeys/*` (one key), never `/apikeys` (the collection): no listing of keys or values.
                    policy.statement(
                        "ReadAndDeleteThisSecretsKeys",
                        ["apigateway:GET", "apigateway:DELETE"],
                        f"{api}/apikeys/*",
                        condition={"StringEquals": {f"aws:ResourceTag/{SECRET_TAG}": self.secret.arn}},
                    ),
                    # Attach only; reading `/usageplans/<plan>/keys*` would return the values of every key in
                    # the plan (tenants may share it).
                    policy.statement(
                        "AttachKeysToUsagePlans",
                        ["apigateway:POST"],
                        [f"{api}/usageplans/{plan}/keys" for plan in props.usage_plan_ids],
                    ),
                    # testSecret's GetUsagePlans?keyId=: plan settings (throttle, quota, stages), no key value.
                    policy.statement("FindKeysUsagePlans", ["apigateway:GET"], f"{api}/usageplans"),
                ),
            ),
        )
        # GetParameter for its LastModifiedDate (when the replaced keys' grace starts), read without decryption.
        props.parameter.grant_write(self.function)
        grant_encrypt_decrypt([self.kms_key, props.parameter.kms_key], self.function, sid="UseKeys")
        permission = LambdaPermission(
            self,
            "invoke-permission",
            statement_id="AllowSecretsManagerRotation",
            action="lambda:InvokeFunction",
            function_name=self.function.function_name,
            principal="secretsmanager.amazonaws.com",
            source_arn=self.secret.arn,
        )
        # Terraform never manages the keys rotation creates, so `destroy` would orphan them: this
        # invocation is a no-op on create/update and deletes the secret's keys on destroy.
        cleanup = LambdaInvocation(
            self,
            "cleanup-on-destroy",
            function_name=self.function.function_name,
            input=Fn.jsonencode({"Cleanup": {"SecretId": self.secret.arn}}),
            lifecycle_scope="CRUD",
        )
        SecretsmanagerSecretRotation(
            self,
            "schedule",
            secret_id=self.secret.id,
            rotation_lambda_arn=self.function.arn,
            rotation_rules=SecretsmanagerSecretRotationRotationRules(automatically_after_days=props.rotation_days),
            # Rotation must be able to invoke the function on the first run; on destroy the schedule goes
            # first, so no rotation creates a key after the cleanup ran.
            depends_on=[permission, cleanup],
        )

    @property
    def secret_arn(self) -> str:
        return self.secret.arn

    @property
    def secret_name(self) -> str:
        return self.secret.name

    @property
    def function_name(self) -> str:
        return self.function.function_name

    @property
    def function_arn(self) -> str:
        return self.function.arn

    @property
    def log_group(self) -> CloudwatchLogGroup:
        return self.function.log_group
