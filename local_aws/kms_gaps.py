"""moto gap: AWS-managed KMS keys are reported as customer keys.

A service's default key (`alias/aws/dynamodb`, `alias/aws/s3`, ...) belongs to AWS. moto 5.2.5 creates it
on first use, which is fine, but describes it with `KeyManager = CUSTOMER`, so it looks like a key somebody
created and forgot: the Terraform provider describes `alias/aws/dynamodb` for every encrypted table it
reads, and after `terraform destroy` a `CUSTOMER` key "Default key" was left that no configuration made.
Here these keys say `KeyManager = AWS`, as in KMS.
"""

from __future__ import annotations

from moto.kms.models import KmsBackend

_installed = False


def install() -> None:
    """Patch moto's creation of default keys (idempotent)."""
    global _installed
    if _installed:
        return
    moto_generate_default_keys = KmsBackend._generate_default_keys

    def generate_default_keys(self: KmsBackend, alias_name: str) -> str | None:
        key_id = moto_generate_default_keys(self, alias_name)
        if key_id is not None:
            self.keys[key_id].key_manager = "AWS"
        return key_id

    KmsBackend._generate_default_keys = generate_default_keys
    _installed = True
