"""moto gap: CloudWatch Logs `AssociateKmsKey` and `DisassociateKmsKey` are not implemented.

moto 5.2.5 stores a key given to `CreateLogGroup`, but answers both calls with a 500 ("not implemented"),
which the provider retries until it gives up. Terraform calls them whenever an existing group gains or loses
its `kms_key_id`: an adopted log group of the original modules (no key) taking the operations key, or a
group whose key changes. Here they set or clear the group's key, as CloudWatch Logs does.
"""

from __future__ import annotations

from moto.logs.exceptions import ResourceNotFoundException
from moto.logs.responses import LogsResponse

_installed = False


def _set_key(response: LogsResponse, key_id: str | None) -> str:
    name = response._get_param("logGroupName")
    group = response.logs_backend.groups.get(name)
    if group is None:
        raise ResourceNotFoundException("The specified log group does not exist.")
    group.kms_key_id = key_id
    return ""


def install() -> None:
    """Add both actions to moto's Logs responses (idempotent)."""
    global _installed
    if _installed:
        return
    LogsResponse.associate_kms_key = lambda self: _set_key(self, self._get_param("kmsKeyId"))
    LogsResponse.disassociate_kms_key = lambda self: _set_key(self, None)
    _installed = True
