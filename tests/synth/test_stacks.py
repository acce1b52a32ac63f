"""Stack-level behaviour: backend, provider tags, determinism."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.synth import SERVICE_STACK, STATE_STACK

pytestmark = pytest.mark.seconds(31)


def test_service_state_lives_in_the_remote_bucket_with_both_locks(service):
    assert service["terraform"]["backend"] == {
        "s3": {
            "bucket": "kms-key-generator-tfstate",
            "key": "kms-key-generator/terraform.tfstate",
            "region": "us-east-1",
            "dynamodb_table": "kms-key-generator-tflock",
            "encrypt": True,
            # Without it Terraform asks for AES256 and the state would not be under the state key.
            "kms_key_id": "alias/kms-key-generator-tfstate",
            "use_lockfile": True,
        }
    }


def test_s3_native_locking_is_a_setting(variant):
    backend = variant.service["terraform"]["backend"]["s3"]
    assert "use_lockfile" not in backend
    assert backend["dynamodb_table"] == "keys-variant-lock"


def test_provider_tags_every_resource(service, state):
    for stack in (service, state):
        (provider,) = stack["provider"]["aws"]
        assert provider["default_tags"] == [
            {
                "tags": {
                    "CostCategory": "security",
                    "Environment": "dev",
                    "ManagedBy": "cdktf",
                    "Project": "kms-key-generator",
                }
            }
        ]


def test_aws_provider_is_pinned_to_the_mirrored_version(service):
    assert service["terraform"]["required_providers"]["aws"]["version"] == "5.100.0"


def _digests(synth) -> dict[str, str]:
    return {
        str(path.relative_to(synth.outdir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(synth.outdir.joinpath("stacks").rglob("*"))
        if path.is_file()
    }


def test_two_synths_of_one_commit_are_byte_identical(synths):
    first, second = _digests(synths["default"]), _digests(synths["default_again"])
    assert {f"stacks/{SERVICE_STACK}/cdk.tf.json", f"stacks/{STATE_STACK}/cdk.tf.json"} <= set(first)
    assert first == second


def test_no_machine_paths_in_synthesized_json(synth):
    for stack in (SERVICE_STACK, STATE_STACK):
        text = (synth.stack_dir(stack) / "cdk.tf.json").read_text()
        assert str(synth.outdir) not in text
        assert "/work/" not in text and "/tmp/" not in text
