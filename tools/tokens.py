"""Manage tenants' bearer tokens: `python -m tools.tokens [--table NAME] [--region R] [--stack-dir DIR] <command>`.

The table is the one `lambda/token_authorizer/` reads (hash key `token_hash`). Commands:
- `issue TENANT [--api-key-id ID]`: a new token (`secrets.token_urlsafe(32)`) for the tenant, metered on API key
  ID, which must be enabled and tagged `Tenant=TENANT` (constructs_lib/tenants.py: the `tenant_api_key_ids`
  output). A key without that tag is refused, and so is one tagged `RotationSecretArn` (the service's own key,
  owned by rotation, which deletes it two rotations later: every token on it would then be refused). The
  table gets the token's SHA-256, the tenant, the key's id and value (read with GetApiKey; the authorizer hands
  it to API Gateway), `enabled` and `created`: the token itself is stored nowhere. It goes to stdout, alone and
  once (so `TOKEN=$(python -m tools.tokens ... issue ...)` captures it); stderr says it cannot be shown again
  and gives the full hash, the handle `revoke` takes.
- `revoke TENANT|HASH`: 64 hex digits name one token by its hash (tenant ids, at most 63 characters by the
  settings' rule, never look like one); anything else is a tenant, all of whose tokens are revoked. Revoking
  deletes the item. Exits 1 when nothing matched, so a mistyped tenant is not mistaken for a revocation.
- `list [--full-hash]`: tenant, hash prefix (the 12 characters the authorizer logs), created, enabled; never a
  token (none is stored) nor a key value (not even read).

Tenant-wide revoke and list scan the whole table (paginated, strongly consistent so a token issued a moment ago
is seen): the table holds one item per live token, issued by hand, so it stays small (hundreds of items) and a
scan costs less than keeping a tenant index. Failures print one line on stderr and exit 1.

What a flag leaves out comes from the deployed service stack, so `issue acme` is enough after a deploy:
`--table` defaults to its `tokens_table_name` output and `--api-key-id` to the tenant's entry in its
`tenant_api_key_ids` output (`terraform output -json` in `--stack-dir`, run only when one of them is missing).
The region is `--region`, else `$AWS_REGION`, else `$AWS_DEFAULT_REGION`, else the stack's `region` output when
the outputs were read (the table is there), else boto3's configured region. botocore's own `$AWS_ENDPOINT_URL`
(and `$AWS_ENDPOINT_URL_DYNAMODB`, ...) sends the calls elsewhere, e.g. to the local emulator.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from tools.request_key import DEFAULT_STACK_DIR, REGION_OUTPUT, CliError, terraform_outputs

TOKEN_BYTES = 32
HASH_PREFIX_LENGTH = 12
_HASH_RE = re.compile(r"[0-9a-fA-F]{64}")
# The settings' tenant id rule (constructs_lib/settings.py); at most 63 characters, so never a 64-hex hash.
_TENANT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# The tag constructs_lib/tenants.py puts on each tenant's API key.
TENANT_TAG = "Tenant"
# The tag the rotation Lambda puts on every key it creates (lambda/api_key_rotation/handler.py: SECRET_TAG).
ROTATION_TAG = "RotationSecretArn"
# The service stack's outputs (constructs_lib/stacks/service/) that name the table and each tenant's key.
TABLE_OUTPUT = "tokens_table_name"
TENANT_KEYS_OUTPUT = "tenant_api_key_ids"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.tokens", description="Manage tenants' bearer tokens.")
    parser.add_argument("--table", help=f"the tokens DynamoDB table (default: the stack's {TABLE_OUTPUT} output)")
    parser.add_argument(
        "--region",
        help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the stack's region output when read, then "
        "boto3's configured region)",
    )
    parser.add_argument(
        "--stack-dir",
        default=DEFAULT_STACK_DIR,
        help=f"deployed service stack whose outputs fill in --table and --api-key-id (default: {DEFAULT_STACK_DIR})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="issue a token for a tenant and print it once")
    issue.add_argument("tenant", help="tenant id: 1-63 lowercase letters, digits or '-'")
    issue.add_argument(
        "--api-key-id",
        help="id of the API key the tenant's requests are metered on (default: the tenant's entry in the stack's "
        f"{TENANT_KEYS_OUTPUT} output)",
    )
    revoke = commands.add_parser("revoke", help="revoke one token (by hash) or every token of a tenant")
    revoke.add_argument("target", metavar="TENANT|HASH", help="a tenant id, or a token's 64-hex-digit hash")
    listing = commands.add_parser("list", help="list tokens: tenant, hash prefix, created, enabled")
    listing.add_argument("--full-hash", action="store_true", help="print whole hashes (what revoke takes)")
    return parser.parse_args(argv)


def token_hash(token: str) -> str:
    """The same digest the authorizer looks up."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _aws(call, what: str):
    """Run an AWS call, turning its failure into one line."""
    try:
        return call()
    except (BotoCoreError, ClientError) as error:
        raise CliError(f"{what}: {error}") from None


def _scan(dynamodb, table: str, **params):
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True, **params)
    return [item for page in _aws(lambda: list(pages), f"cannot scan table {table}") for item in page["Items"]]


def _check_owner(tags: dict[str, str], api_key_id: str, tenant: str) -> None:
    """A token binds to its tenant's own key: one that outlives rotations and meters that tenant only."""
    if ROTATION_TAG in tags:
        raise CliError(
            f"API key {api_key_id} is owned by rotation (tag {ROTATION_TAG}): rotation deletes it two rotations "
            f"later, and every token issued on it would then be refused; use tenant {tenant}'s key "
            "(output tenant_api_key_ids)"
        )
    key_tenant = tags.get(TENANT_TAG)
    if key_tenant is None:
        raise CliError(
            f"API key {api_key_id} has no {TENANT_TAG} tag, so it is no tenant's key; use tenant {tenant}'s key "
            f"(output tenant_api_key_ids, tagged {TENANT_TAG}={tenant})"
        )
    if key_tenant != tenant:
        raise CliError(f"API key {api_key_id} is tenant {key_tenant}'s (tag {TENANT_TAG}), not {tenant}'s")


def issue(session: boto3.session.Session, table: str, tenant: str, api_key_id: str) -> tuple[str, str]:
    """Store a new token's hash for `tenant`; returns (token, hash). The token is not kept anywhere."""
    if not _TENANT_RE.fullmatch(tenant):
        raise CliError(f"tenant id {tenant!r} must be 1-63 lowercase letters, digits or '-', not starting with '-'")
    api_key = _aws(
        lambda: session.client("apigateway").get_api_key(apiKey=api_key_id, includeValue=True),
        f"cannot read API key {api_key_id}",
    )
    if not api_key.get("enabled"):
        raise CliError(f"API key {api_key_id} is disabled: API Gateway would refuse every request metered on it")
    _check_owner(api_key.get("tags") or {}, api_key_id, tenant)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = token_hash(token)
    item = {
        "token_hash": {"S": digest},
        "tenant_id": {"S": tenant},
        "api_key_id": {"S": api_key_id},
        "api_key_value": {"S": api_key["value"]},
        "enabled": {"BOOL": True},
        "created": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
    }
    _aws(lambda: session.client("dynamodb").put_item(TableName=table, Item=item), f"cannot write to table {table}")
    return token, digest


def revoke(session: boto3.session.Session, table: str, target: str) -> int:
    """Delete the token with hash `target`, or every token of tenant `target`; returns how many."""
    dynamodb = session.client("dynamodb")
    if _HASH_RE.fullmatch(target):
        hashes = [target.lower()]
    else:
        items = _scan(
            dynamodb,
            table,
            FilterExpression="#tenant = :tenant",
            ProjectionExpression="#hash",
            ExpressionAttributeNames={"#tenant": "tenant_id", "#hash": "token_hash"},
            ExpressionAttributeValues={":tenant": {"S": target}},
        )
        hashes = [item["token_hash"]["S"] for item in items]
    revoked = 0
    for digest in hashes:
        old = _aws(
            lambda digest=digest: dynamodb.delete_item(
                TableName=table, Key={"token_hash": {"S": digest}}, ReturnValues="ALL_OLD"
            ),
            f"cannot delete token {digest[:HASH_PREFIX_LENGTH]} from table {table}",
        )
        revoked += "Attributes" in old
    return revoked


def list_tokens(session: boto3.session.Session, table: str) -> list[dict[str, object]]:
    """Every token's tenant, hash, created and enabled, sorted by tenant then age; key values are not read."""
    items = _scan(
        session.client("dynamodb"),
        table,
        ProjectionExpression="#tenant, #hash, #created, #enabled",
        ExpressionAttributeNames={
            "#tenant": "tenant_id",
            "#hash": "token_hash",
            "#created": "created",
            "#enabled": "enabled",
        },
    )
    rows = [
        {
            "tenant": item.get("tenant_id", {}).get("S", ""),
            "hash": item["token_hash"]["S"],
            "created": item.get("created", {}).get("S", ""),
            "enabled": item.get("enabled", {}).get("BOOL") is True,
        }
        for item in items
    ]
    return sorted(rows, key=lambda row: (row["tenant"], row["created"], row["hash"]))


def format_table(rows: list[dict[str, object]], full_hash: bool) -> str:
    header = ("TENANT", "HASH" if full_hash else "HASH PREFIX", "CREATED", "ENABLED")
    lines = [header] + [
        (
            row["tenant"],
            row["hash"] if full_hash else row["hash"][:HASH_PREFIX_LENGTH],
            row["created"],
            "yes" if row["enabled"] else "no",
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip() for line in lines
    )


def _target(target: str) -> str:
    return f"hash {target.lower()}" if _HASH_RE.fullmatch(target) else f"tenant {target}"


def complete(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Fill in --table, issue's --api-key-id and --region; the stack's outputs are read only when a flag is
    missing, so the CLI also works with no Terraform at hand."""
    key_missing = args.command == "issue" and not args.api_key_id
    hint = "pass --table and --api-key-id"
    outputs = terraform_outputs(args.stack_dir, hint=hint) if not args.table or key_missing else {}
    if not args.table:
        table = outputs.get(TABLE_OUTPUT)
        if not isinstance(table, str) or not table:
            raise CliError(
                f"stack {args.stack_dir} has no {TABLE_OUTPUT} output (deployed with api.api_key_source "
                '= "AUTHORIZER"?): pass --table'
            )
        args.table = table
    if key_missing:
        keys = outputs.get(TENANT_KEYS_OUTPUT)
        key_id = keys.get(args.tenant) if isinstance(keys, dict) else None
        if not isinstance(key_id, str) or not key_id:
            raise CliError(
                f"stack {args.stack_dir} has no API key for tenant {args.tenant} in its "
                f"{TENANT_KEYS_OUTPUT} output (one per [[tenants]] entry deployed): pass --api-key-id"
            )
        args.api_key_id = key_id
    stack_region = outputs.get(REGION_OUTPUT)
    args.region = (
        args.region
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or (stack_region if isinstance(stack_region, str) and stack_region else None)
    )


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    complete(args, environ)
    session = boto3.session.Session(region_name=args.region)
    if session.region_name is None:  # else boto3's own "You must specify a region." names no way out
        raise CliError("no AWS region: pass --region or set $AWS_REGION")
    if args.command == "issue":
        token, digest = issue(session, args.table, args.tenant, args.api_key_id)
        print(token)
        print(
            f"Issued a token for tenant {args.tenant} (API key {args.api_key_id}), hash {digest}.\n"
            "WARNING: the token above is shown this once and stored nowhere; it cannot be shown again.",
            file=sys.stderr,
        )
    elif args.command == "revoke":
        count = revoke(session, args.table, args.target)
        if not count:
            raise CliError(f"no token found for {_target(args.target)}: nothing revoked")
        print(f"revoked {count} token{'s' if count != 1 else ''} ({_target(args.target)})")
    else:
        rows = list_tokens(session, args.table)
        print(format_table(rows, args.full_hash) if rows else "no tokens")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args, os.environ)
    except (CliError, BotoCoreError) as error:  # BotoCoreError: e.g. no credentials found
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
