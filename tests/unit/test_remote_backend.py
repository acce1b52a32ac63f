"""Remote-state stack: a hardened state bucket and lock table, with local state of its own."""

from __future__ import annotations

import json

from tests.support.synth import only, ref


def test_state_stack_keeps_its_own_state_locally_at_a_relative_path(state):
    assert state["terraform"]["backend"] == {"local": {"path": "../../../terraform.kms-key-generator-remote-state.tfstate"}}


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
    assert {k: block[k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")} == {
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
    for fragment in ('"Effect" = "Deny"', '"aws:SecureTransport" = "false"', '"Action" = ["s3:*"]', f'"{bucket_arn}/*"'):
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
        name: True for name in ("state_bucket_name", "state_bucket_arn", "lock_table_name", "lock_table_arn", "state_kms_key_arn")
    }


def test_names_come_from_settings(state, variant):
    assert only(state, "aws_s3_bucket")["bucket"] == "kms-key-generator-tfstate"
    assert only(variant.state, "aws_s3_bucket")["bucket"] == "keys-variant-state"
    assert only(variant.state, "aws_dynamodb_table")["name"] == "keys-variant-lock"
    assert json.dumps(variant.state).count("kms-key-generator") == 0
