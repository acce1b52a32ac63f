"""An SSM SecureString parameter encrypted with its own KMS key.

Resources: KMS key (rotation on, key policy: account administers, SSM in this region may use it) +
alias, and the `aws_ssm_parameter`. The value is whatever Terraform expression the caller passes, so
the parameter tracks the live API key instead of a literal (the original hard-coded it: defect 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.ssm_parameter import SsmParameter
from constructs import Construct

from .cdk import TerraformResourceLifecycle
from .kms import ServiceKeyProps, service_key


@dataclass(frozen=True, kw_only=True)
class SecureParameterProps:
    name: str
    value: str
    """A Terraform reference (token) to the secret; a literal only together with `value_owned_elsewhere`."""
    description: str
    kms_alias: str
    account_id: str
    partition: str
    region: str
    value_owned_elsewhere: bool = False
    """True when something else (API-key rotation) keeps the value current: Terraform then sets `value`
    only at creation and ignores it afterwards. Default: Terraform owns the value."""


class SecureParameter(Construct):
    """Exposes `parameter` and `kms_key`."""

    def __init__(self, scope: Construct, id: str, props: SecureParameterProps) -> None:
        super().__init__(scope, id)
        self.kms_key = service_key(
            self,
            ServiceKeyProps(
                description=f"Encrypts SSM parameter {props.name}",
                alias=props.kms_alias,
                service="ssm",
                sid_prefix="Ssm",
                account_id=props.account_id,
                partition=props.partition,
                region=props.region,
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
