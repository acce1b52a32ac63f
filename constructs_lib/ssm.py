"""An SSM SecureString parameter encrypted with its own KMS key.

Resources: KMS key (rotation on, key policy: account administers, SSM in this region may use it) +
alias, and the `aws_ssm_parameter`. The value is whatever Terraform expression the caller passes, so
the parameter tracks the live API key instead of a literal (the original hard-coded it: defect 5).
`grant_write(function)` lets a function keep the value current.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.ssm_parameter import SsmParameter
from constructs import Construct

from . import policy
from .cdk import TerraformResourceLifecycle
from .environment import AwsEnvironment
from .kms import ServiceKeyProps, service_key
from .validation import KMS_ALIAS, Problems, matches, non_empty, unresolved

_NAME = matches(r"/?[A-Za-z0-9_.\-/]{1,2047}", "an SSM parameter name (letters, digits and _ . - /)")


@dataclass(frozen=True, kw_only=True)
class SecureParameterProps:
    name: str
    value: str
    """A Terraform reference (token) to the secret; a literal only together with `value_owned_elsewhere`."""
    description: str
    kms_alias: str
    environment: AwsEnvironment
    """The account whose SSM (in this region) may use the parameter's key."""
    value_owned_elsewhere: bool = False
    """True when something else (API-key rotation) keeps the value current: Terraform then sets `value`
    only at creation and ignores it afterwards. Default: Terraform owns the value."""


def _validate(props: SecureParameterProps) -> None:
    problems = Problems("SecureParameter")
    problems.check("name", props.name, _NAME)
    problems.check("value", props.value, non_empty)
    if props.value and not props.value_owned_elsewhere and not unresolved(props.value):
        # A literal secret would sit in the synthesized JSON and in every review of it.
        problems.add(
            "value",
            props.value,
            "must be a Terraform reference unless value_owned_elsewhere is set",
            shown="a literal (not shown)",
        )
    problems.check("description", props.description, matches(r"(?s).{0,1024}", "at most 1024 characters"))
    problems.check("kms_alias", props.kms_alias, KMS_ALIAS)
    problems.raise_if_any()


class SecureParameter(Construct):
    """Exposes `parameter` and `kms_key` (the resources), `name`, `arn` and `kms_key_arn`; `grant_write(grantee)`."""

    def __init__(self, scope: Construct, id: str, props: SecureParameterProps) -> None:
        _validate(props)
        super().__init__(scope, id)
        self.kms_key = service_key(
            self,
            ServiceKeyProps(
                description=f"Encrypts SSM parameter {props.name}",
                alias=props.kms_alias,
                service="ssm",
                sid_prefix="Ssm",
                environment=props.environment,
            ),
        )
        self.parameter = SsmParameter(
            self,
            "parameter",
            name=props.name,
            description=props.description,
            type="SecureString",
            value=props.value,
            key_id=self.kms_key.arn,
            lifecycle=TerraformResourceLifecycle(ignore_changes=["value"]) if props.value_owned_elsewhere else None,
        )

    @property
    def name(self) -> str:
        return self.parameter.name

    @property
    def arn(self) -> str:
        return self.parameter.arn

    @property
    def kms_key_arn(self) -> str:
        return self.kms_key.arn

    def grant_write(self, grantee: policy.Grantee, *, sid: str = "UpdateSsmParameter") -> None:
        """Let `grantee` put new values, and read the parameter's metadata (`GetParameter` without decryption:
        when the value last changed). Encrypting the value also needs the key (`kms.grant_encrypt_decrypt` with
        `kms_key`), which the caller grants so that one statement covers every key it uses."""
        grantee.add_to_role_policy(policy.statement(sid, ["ssm:PutParameter", "ssm:GetParameter"], self.arn))
