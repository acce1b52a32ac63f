"""Remote-state stack: a hardened state bucket and lock table, with local state of its own."""

from __future__ import annotations

import json

import pytest

from tests.support.synth import Synth, only, ref


def test_state_stack_keeps_its_own_state_locally_at_a_relative_path(state):
    assert state["terraform"]["backend"] == {
        "local": {"path": "../../../terraform.kms-key-generator-remote-state.tfstate"}
    }


def test_bucket_is_versioned(state):
    versioning = only(state, "aws_s3_bucket_versioning")
    assert versioning["bucket"] == ref(state, "aws_s3_bucket", "id")
    assert versioning["versioning_configuration"] == {"status": "Enabled"}


def test_bucket_encrypts_with_its_own_rotating_kms_key(state):
    rule = only(state, "aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
    default = rule["apply_server_side_encryption_by_default"]
    assert default == {"sse_algorithm": "aws:kms", "kms_master_key_id": ref(state, "aws_kms_key", "arn")}
    assert only(state, "aws_kms_key")["enable_key_rotation"] is True


def test_bucket_blocks_all_public_access(state):
    block = only(state, "aws_s3_bucket_public_access_block")
    assert {
        k: block[k]
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    } == {
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }


def test_bucket_owner_enforced(state):
    assert only(state, "aws_s3_bucket_ownership_controls")["rule"] == {"object_ownership": "BucketOwnerEnforced"}


def test_bucket_policy_denies_non_tls_requests(state):
    policy = only(state, "aws_s3_bucket_policy")["policy"]
    bucket_arn = ref(state, "aws_s3_bucket", "arn")
    # jsonencode({...}) keeps references; check the statement's parts are all there.
    for fragment in (
        '"Effect" = "Deny"',
        '"aws:SecureTransport" = "false"',
        '"Action" = ["s3:*"]',
        f'"{bucket_arn}/*"',
    ):
        assert fragment in policy


def test_lock_table_fits_terraform_locking(state):
    table = only(state, "aws_dynamodb_table")
    assert table["hash_key"] == "LockID"
    assert table["attribute"] == [{"name": "LockID", "type": "S"}]
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["server_side_encryption"] == {"enabled": True, "kms_key_arn": ref(state, "aws_kms_key", "arn")}


def test_state_stack_outputs_are_described(state):
    assert {name: bool(o.get("description")) for name, o in state["output"].items()} == {
        name: True
        for name in ("state_bucket_name", "state_bucket_arn", "lock_table_name", "lock_table_arn", "state_kms_key_arn")
    }


def test_names_come_from_settings(state, variant):
    assert only(state, "aws_s3_bucket")["bucket"] == "kms-key-generator-tfstate"
    assert only(variant.state, "aws_s3_bucket")["bucket"] == "keys-variant-state"
    assert only(variant.state, "aws_dynamodb_table")["name"] == "keys-variant-lock"
    assert json.dumps(variant.state).count("kms-key-generator") == 0


# --- state under the customer key (issue 14, point 11) ------------------------------------------------------------

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def unprotected(tmp_path_factory, synthesizer) -> Synth:
    """Authorizer mode (so the tokens table exists), deletion protection off, the state key named by its ARN."""
    workdir = tmp_path_factory.mktemp("synth-unprotected")
    config = workdir / "unprotected.toml"
    config.write_text(
        f'[api]\napi_key_source = "AUTHORIZER"\n[state]\ndeletion_protection = false\nkms_key_id = "{KEY_ARN}"\n'
    )
    return synthesizer.synth(workdir / "out", config)


def _statement(policy: str, sid: str) -> str:
    """The text of one statement of a `${jsonencode({...})}` policy (statements are flat: no nested braces
    beyond their condition)."""
    start = policy.index(f'{{"Sid" = "{sid}"')
    depth = 0
    for end, char in enumerate(policy[start:], start):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return policy[start : end + 1]
    raise AssertionError(f"statement {sid} is not closed")


def test_service_backend_encrypts_state_under_the_state_key_by_its_alias(service, state, variant):
    backend = service["terraform"]["backend"]["s3"]
    # encrypt alone would make Terraform send AES256 and override the bucket's SSE-KMS default.
    assert backend["encrypt"] is True
    alias = only(state, "aws_kms_alias")
    assert backend["kms_key_id"] == alias["name"] == "alias/kms-key-generator-tfstate"
    assert alias["target_key_id"] == ref(state, "aws_kms_key", "key_id")
    # The key the alias names is the bucket's default key too.
    default = only(state, "aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
    assert default["apply_server_side_encryption_by_default"]["kms_master_key_id"] == ref(state, "aws_kms_key", "arn")
    assert variant.service["terraform"]["backend"]["s3"]["kms_key_id"] == only(variant.state, "aws_kms_alias")["name"]


def test_state_kms_key_id_setting_names_the_key_in_the_backend(unprotected):
    assert unprotected.service["terraform"]["backend"]["s3"]["kms_key_id"] == KEY_ARN


def test_bucket_policy_refuses_uploads_that_are_not_sse_kms(state):
    policy = only(state, "aws_s3_bucket_policy")["policy"]
    statement = _statement(policy, "DenyUploadsNotSseKms")
    bucket_arn = ref(state, "aws_s3_bucket", "arn")
    assert statement == (
        '{"Sid" = "DenyUploadsNotSseKms", "Effect" = "Deny", "Action" = ["s3:PutObject"], '
        f'"Resource" = "{bucket_arn}/*", "Principal" = "*", '
        '"Condition" = {"StringNotEquals" = {"s3:x-amz-server-side-encryption" = "aws:kms"}}}'
    )


def test_bucket_policy_refuses_uploads_under_any_other_key(state, service):
    policy = only(state, "aws_s3_bucket_policy")["policy"]
    statement = _statement(policy, "DenyUploadsUnderOtherKeys")
    bucket_arn = ref(state, "aws_s3_bucket", "arn")
    accepted = [
        ref(state, "aws_kms_key", "arn"),
        ref(state, "aws_kms_key", "key_id"),
        ref(state, "aws_kms_alias", "arn"),
        f'"{service["terraform"]["backend"]["s3"]["kms_key_id"]}"',  # what the backend sends
    ]
    accepted = [value.removeprefix("${").removesuffix("}") for value in accepted]
    assert statement == (
        '{"Sid" = "DenyUploadsUnderOtherKeys", "Effect" = "Deny", "Action" = ["s3:PutObject"], '
        f'"Resource" = "{bucket_arn}/*", "Principal" = "*", "Condition" = {{"StringNotEquals" = '
        f'{{"s3:x-amz-server-side-encryption-aws-kms-key-id" = [{", ".join(accepted)}]}}}}}}'
    )


def test_lock_and_tokens_tables_have_deletion_protection_by_default(state, variant, hardened):
    assert only(state, "aws_dynamodb_table")["deletion_protection_enabled"] is True
    assert only(variant.state, "aws_dynamodb_table")["deletion_protection_enabled"] is True
    for synth in (variant, hardened):
        assert only(synth.service, "aws_dynamodb_table", "token-authorizer")["deletion_protection_enabled"] is True


def test_deletion_protection_can_be_turned_off_for_both_tables(unprotected):
    assert only(unprotected.state, "aws_dynamodb_table")["deletion_protection_enabled"] is False
    assert only(unprotected.service, "aws_dynamodb_table", "token-authorizer")["deletion_protection_enabled"] is False
