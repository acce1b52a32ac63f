"""moto gaps in `UpdateTable`, met when Terraform adopts a lock table created by other tooling.

* `SSESpecification` is ignored: moto applies a table's encryption only at `CreateTable`, so switching an
  existing table to a customer-managed KMS key answered 200, changed nothing, and every later plan showed
  the change again. Here it is applied as DynamoDB does: `Enabled = true` encrypts under the given key
  (else the AWS-managed `alias/aws/dynamodb` key, as at creation); `Enabled = false` returns to an
  AWS-owned key, which `DescribeTable` does not describe.
* Switching `BillingMode` to `PAY_PER_REQUEST` kept the provisioned capacity, while DynamoDB then reports
  0 read and 0 write units (as for a table created on demand); the provider refuses to plan a table whose
  state has capacity under on-demand billing.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.models import Table
from moto.dynamodb.responses import DynamoHandler

_installed = False


def apply_sse_specification(table: Table, specification: dict[str, Any]) -> None:
    """Set `table`'s encryption the way `UpdateTable` with this `SSESpecification` does."""
    if not specification.get("Enabled"):
        table.sse_specification = None
        return
    key = specification.get("KMSMasterKeyId") or table._get_default_encryption_key(table.account_id, table.region_name)
    table.sse_specification = {"Enabled": True, "SSEType": specification.get("SSEType", "KMS"), "KMSMasterKeyId": key}


def install() -> None:
    """Patch moto's `UpdateTable` handler (idempotent)."""
    global _installed
    if _installed:
        return
    moto_update_table = DynamoHandler.update_table

    def update_table(self: DynamoHandler) -> Any:
        table = self.dynamodb_backend.get_table(self.body["TableName"])
        specification = self.body.get("SSESpecification")
        if specification is not None:
            apply_sse_specification(table, specification)
        if self.body.get("BillingMode") == "PAY_PER_REQUEST" and "ProvisionedThroughput" not in self.body:
            table.throughput = {**table.throughput, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
        return moto_update_table(self)

    DynamoHandler.update_table = update_table
    _installed = True
