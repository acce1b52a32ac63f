"""moto gap: S3 bucket policies are enforced without their conditions.

moto 5.2 evaluates a bucket policy's `principal: *` statements but ignores `Condition` blocks, so a
conditional Deny (our state bucket's "deny when aws:SecureTransport is false") denies every request and
Terraform's S3 backend gets 403. Real S3 applies such a statement only when its condition holds; the
emulator cannot evaluate conditions either, so it leaves conditional statements out of enforcement.
Unconditional statements keep moto's behaviour.
"""

from __future__ import annotations

import json

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket

_installed = False


def _unconditional(policy: bytes) -> str:
    document = json.loads(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [statement for statement in statements if "Condition" not in statement]
    return json.dumps(document)


def _get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    return IAMPolicy(_unconditional(self.policy)).is_action_permitted(action, resource)


def install() -> None:
    """Patch moto's bucket permission check (idempotent)."""
    global _installed
    if not _installed:
        FakeBucket.get_permission = _get_permission
        _installed = True
