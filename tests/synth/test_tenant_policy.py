"""Per-tenant policy: `[[tenants]]` accounts, regions and alias prefix, validated like every setting, packaged
with the key generator as `tenants.json` (deterministically), plus the environment that names the operator.

The variant fixture's tenants set every policy key (acme), none (globex) or only accounts (initech).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from constructs_lib.lambda_function import SOURCE_MTIME, stage_sources
from constructs_lib.settings import SettingsError, load_settings
from constructs_lib.stacks.service.compute import tenant_policies
from constructs_lib.tenants import POLICIES_FILE
from tests.support.lambdas import load_handler
from tests.support.synth import Synth, only, ref

pytestmark = pytest.mark.seconds(34)

KEY_GENERATOR = "key-generator"
PLAN = '[[tenants]]\nid = "{id}"\nplan = "default"\n'


def tenant(tenant_id: str, **keys: object) -> str:
    """One `[[tenants]]` table in the default plan, with extra keys as TOML."""
    return PLAN.format(id=tenant_id) + "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())


# --- settings ---------------------------------------------------------------------------------------------

BAD_POLICIES = [
    (
        "account_not_12_digits",
        tenant("acme", allowed_accounts=["12345"]),
        "tenants[0].allowed_accounts: item 0 ('12345') must be a 12-digit AWS account id",
    ),
    (
        "account_twice",
        tenant("acme", allowed_accounts=["111122223333", "111122223333"]),
        "tenants[0].allowed_accounts: item 1 ('111122223333') is listed twice",
    ),
    (
        "accounts_not_a_list",
        tenant("acme", allowed_accounts="111122223333"),
        "tenants[0].allowed_accounts: must be a list of a string, got str '111122223333'",
    ),
    (
        "region_not_a_region",
        tenant("acme", allowed_regions=["Europe"]),
        "tenants[0].allowed_regions: item 0 ('Europe') must be an AWS region code such as eu-west-1",
    ),
    (
        "region_twice",
        tenant("acme", allowed_regions=["eu-west-1", "eu-west-1"]),
        "tenants[0].allowed_regions: item 1 ('eu-west-1') is listed twice",
    ),
    (
        "region_outside_the_service",
        '[lambda]\nallowed_regions = ["eu-west-1", "eu-central-1"]\n'
        + tenant("acme", allowed_regions=["eu-west-1", "us-east-1"]),
        "tenants[0].allowed_regions: item 1 ('us-east-1') is not in lambda.allowed_regions (eu-west-1, eu-central-1)",
    ),
    (
        "prefix_without_final_slash",
        tenant("acme", alias_prefix="acme"),
        "tenants[0].alias_prefix: must be 2-249 letters, digits, '/', '_' or '-', not starting but ending with '/' "
        "(e.g. 'acme/'), got 'acme'",
    ),
    (
        "prefix_with_a_dot",
        tenant("acme", alias_prefix="acme.keys/"),
        "tenants[0].alias_prefix: must be 2-249 letters, digits",
    ),
    (
        "prefix_starting_with_slash",
        tenant("acme", alias_prefix="/acme/"),
        "tenants[0].alias_prefix: must be 2-249 letters, digits",
    ),
    (
        "prefix_too_long",
        tenant("acme", alias_prefix="a" * 249 + "/"),
        "tenants[0].alias_prefix: must be 2-249 letters, digits",
    ),
    (
        "prefix_with_alias",
        tenant("acme", alias_prefix="alias/acme/"),
        "tenants[0].alias_prefix: must not start with 'alias/' (the service adds it: aliases are 'alias/<prefix>...'), "
        "got 'alias/acme/'",
    ),
    (
        "prefix_in_aws_space",
        tenant("acme", alias_prefix="aws/acme/"),
        "tenants[0].alias_prefix: must not start with 'aws/' ('alias/aws/' is reserved for AWS managed keys), "
        "got 'aws/acme/'",
    ),
    (
        "default_prefix_in_aws_space",
        tenant("aws"),
        "tenants[0].alias_prefix: defaults to 'aws/' (from the tenant id), but it must not start with 'aws/' "
        "('alias/aws/' is reserved for AWS managed keys): set alias_prefix",
    ),
    (
        "default_prefix_alias",
        tenant("alias"),
        "tenants[0].alias_prefix: defaults to 'alias/' (from the tenant id), but it must not start with 'alias/'",
    ),
    (
        "operator_is_reserved",
        tenant("operator"),
        "tenants[0].id: is reserved (the service tags its own keys Tenant=operator), got 'operator'",
    ),
    (
        "prefix_inside_a_default_prefix",
        tenant("acme") + tenant("beta", alias_prefix="acme/beta/"),
        "tenants[1].alias_prefix: 'acme/beta/' starts with 'acme/', the prefix of tenant 'acme' (tenants[0]): "
        "each tenant's aliases must be out of every other tenant's reach",
    ),
    (
        "prefix_containing_a_default_one",
        tenant("acme", alias_prefix="beta/acme/") + tenant("beta"),
        "tenants[0].alias_prefix: 'beta/acme/' starts with 'beta/', the prefix of tenant 'beta' (tenants[1])",
    ),
    (
        "prefix_containing_a_later_one",
        tenant("acme", alias_prefix="shared/acme/") + tenant("beta", alias_prefix="shared/"),
        "tenants[0].alias_prefix: 'shared/acme/' starts with 'shared/', the prefix of tenant 'beta' (tenants[1])",
    ),
    (
        "same_prefix_twice",
        tenant("acme", alias_prefix="keys/") + tenant("beta", alias_prefix="keys/"),
        "tenants[1].alias_prefix: 'keys/' starts with 'keys/', the prefix of tenant 'acme' (tenants[0])",
    ),
    (
        "prefixes_differing_in_case",
        tenant("acme", alias_prefix="Keys/") + tenant("beta", alias_prefix="keys/x/"),
        "tenants[1].alias_prefix: 'keys/x/' starts with 'Keys/', the prefix of tenant 'acme' (tenants[0])",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_POLICIES], ids=[c[0] for c in BAD_POLICIES])
def test_refuses_bad_tenant_policies_naming_file_and_key(tmp_path: Path, text: str, expected: str):
    config = tmp_path / "tenants.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    lines = str(raised.value).splitlines()
    assert any(line.startswith(f"{config}: {expected}") for line in lines), lines


def test_every_overlap_is_reported_once(tmp_path: Path):
    config = tmp_path / "tenants.toml"
    config.write_text(
        tenant("a", alias_prefix="x/")
        + tenant("b", alias_prefix="x/y/")
        + tenant("c", alias_prefix="x/y/z/")
        + tenant("d", alias_prefix="xy/")
    )
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    assert [line.removeprefix(f"{config}: ").split(": each")[0] for line in str(raised.value).splitlines()] == [
        "tenants[1].alias_prefix: 'x/y/' starts with 'x/', the prefix of tenant 'a' (tenants[0])",
        "tenants[2].alias_prefix: 'x/y/z/' starts with 'x/', the prefix of tenant 'a' (tenants[0])",
        "tenants[2].alias_prefix: 'x/y/z/' starts with 'x/y/', the prefix of tenant 'b' (tenants[1])",
    ]


def test_defaults_are_own_account_service_regions_and_id_prefix(tmp_path: Path):
    config = tmp_path / "tenants.toml"
    config.write_text(tenant("acme") + tenant("acme-eu"))  # "acme/" and "acme-eu/" do not overlap
    acme, acme_eu = load_settings(config).tenants
    assert (acme.allowed_accounts, acme.allowed_regions, acme.alias_prefix) == ([], [], "acme/")
    assert acme_eu.alias_prefix == "acme-eu/"


def test_explicit_policy_is_kept(tmp_path: Path):
    config = tmp_path / "tenants.toml"
    config.write_text(
        '[lambda]\nallowed_regions = ["eu-west-1", "eu-central-1"]\n'
        + tenant("acme", allowed_accounts=["444455556666"], allowed_regions=["eu-central-1"], alias_prefix="Acme_1/")
    )
    (acme,) = load_settings(config).tenants
    assert (acme.allowed_accounts, acme.allowed_regions, acme.alias_prefix) == (
        ["444455556666"],
        ["eu-central-1"],
        "Acme_1/",
    )


def test_any_region_when_the_service_names_none(tmp_path: Path):
    config = tmp_path / "tenants.toml"
    config.write_text(tenant("acme", allowed_regions=["ap-southeast-2", "us-gov-west-1"]))
    assert load_settings(config).tenants[0].allowed_regions == ["ap-southeast-2", "us-gov-west-1"]


def test_overlap_check_is_fast_for_the_largest_tenant_count(tmp_path: Path):
    # The scan is linear after a sort: 9,990 tenants (the API key quota less the rotating service's ten).
    config = tmp_path / "many.toml"
    config.write_text("".join(tenant(f"t{i}") for i in range(9_990)))
    assert len(load_settings(config).tenants) == 9_990


# --- tenants.json -----------------------------------------------------------------------------------------

VARIANT_POLICIES = {
    "acme": {"alias_prefix": "acme-keys/", "allowed_accounts": ["444455556666"], "allowed_regions": ["eu-west-1"]},
    "globex": {"alias_prefix": "globex/", "allowed_accounts": [], "allowed_regions": ["eu-central-1", "eu-west-1"]},
    "initech": {
        "alias_prefix": "initech/",
        "allowed_accounts": ["111122223333", "777788889999"],
        "allowed_regions": ["eu-central-1", "eu-west-1"],
    },
}


def code_zip(synth: Synth, prefix: str = KEY_GENERATOR) -> Path:
    function = only(synth.service, "aws_lambda_function", prefix)
    return synth.stack_dir(synth.service_name) / function["filename"]


def packaged_policies(synth: Synth) -> str:
    with zipfile.ZipFile(code_zip(synth)) as zipped:
        return zipped.read(POLICIES_FILE).decode("utf-8")


def test_tenant_policies_are_packaged_next_to_the_handler(variant):
    with zipfile.ZipFile(code_zip(variant)) as zipped:
        assert sorted(zipped.namelist()) == ["handler.py", "structured_log.py", POLICIES_FILE]
        info = zipped.getinfo(POLICIES_FILE)
    assert json.loads(packaged_policies(variant)) == VARIANT_POLICIES
    assert info.date_time == (1980, 1, 1, 0, 0, 0) and (info.external_attr >> 16) & 0o777 == 0o644


def test_without_tenants_the_file_is_an_empty_object(synth, hardened):
    assert packaged_policies(synth) == "{}\n"
    assert json.loads(packaged_policies(hardened)) == {
        "acme": {"alias_prefix": "acme/", "allowed_accounts": [], "allowed_regions": []}
    }


def test_only_the_key_generator_gets_the_file(synth, variant):
    for stack, prefix in ((synth, "api-key-rotation"), (variant, "token-authorizer")):
        with zipfile.ZipFile(code_zip(stack, prefix)) as zipped:
            assert POLICIES_FILE not in zipped.namelist()


def test_the_handler_reads_the_packaged_file_as_written(variant):
    handler = load_handler("kms_key_generator", "kms_key_generator_tenant_policy")
    parsed = handler.parse_tenants(packaged_policies(variant))
    assert {
        tenant_id: (sorted(policy.allowed_accounts), sorted(policy.allowed_regions), policy.alias_prefix)
        for tenant_id, policy in parsed.items()
    } == {
        tenant_id: (policy["allowed_accounts"], policy["allowed_regions"], policy["alias_prefix"])
        for tenant_id, policy in VARIANT_POLICIES.items()
    }


def test_file_is_canonical_json(variant):
    text = packaged_policies(variant)
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=1) + "\n"


def test_same_tenants_give_byte_identical_code(synths):
    # `adopt` is `variant` plus import blocks: same tenants, so the same zip, byte for byte, and the same asset.
    assert code_zip(synths["variant"]).read_bytes() == code_zip(synths["adopt"]).read_bytes()
    assert code_zip(synths["default"]).read_bytes() == code_zip(synths["default_again"]).read_bytes()
    assert (
        only(synths["variant"].service, "aws_lambda_function", KEY_GENERATOR)["filename"]
        == only(synths["adopt"].service, "aws_lambda_function", KEY_GENERATOR)["filename"]
    )


def test_file_does_not_depend_on_tenant_or_list_order(tmp_path: Path):
    forward, backward = tmp_path / "forward.toml", tmp_path / "backward.toml"
    acme = tenant("acme", allowed_accounts=["444455556666", "111122223333"], allowed_regions=["us-east-1", "eu-west-1"])
    beta = tenant("beta", alias_prefix="b-keys/")
    forward.write_text(acme + beta)
    backward.write_text(
        beta
        + tenant("acme", allowed_accounts=["111122223333", "444455556666"], allowed_regions=["eu-west-1", "us-east-1"])
    )
    text = tenant_policies(load_settings(forward))
    assert text == tenant_policies(load_settings(backward))
    assert list(json.loads(text)) == ["acme", "beta"]
    assert json.loads(text)["acme"]["allowed_accounts"] == ["111122223333", "444455556666"]


def test_generated_files_are_staged_like_sources(tmp_path: Path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "handler.py").write_text("x = 1\n")
    staged = stage_sources(tmp_path / "stage", source, generated={"tenants.json": "{}\n"})
    written = staged / "tenants.json"
    assert written.read_text() == "{}\n"
    assert written.stat().st_mtime == SOURCE_MTIME and written.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../tenants.json", "must be a plain file name"),
        ("sub/tenants.json", "must be a plain file name"),
        (".hidden", "must be a plain file name"),
        ("handler.py", "would replace a function source"),
    ],
)
def test_generated_files_cannot_escape_or_replace_sources(tmp_path: Path, name: str, problem: str):
    source = tmp_path / "src"
    source.mkdir()
    (source / "handler.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match=problem):
        stage_sources(tmp_path / "stage", source, generated={name: "{}"})


# --- environment ------------------------------------------------------------------------------------------


def environment(synth: Synth) -> dict[str, str]:
    return only(synth.service, "aws_lambda_function", KEY_GENERATOR)["environment"]["variables"]


def test_rotating_service_names_its_secret_as_the_operator(synth):
    service = synth.service
    assert environment(synth) == {
        "SERVICE_NAME": "kms-key-generator",
        "CROSS_ACCOUNT_ROLE_NAME": "kms-key-generator-cross-account",
        "ALLOWED_ACCOUNTS": "",
        "ALLOWED_REGIONS": "",
        "KEY_FACTORY_ROLE_ARN": ref(service, "aws_iam_role", "arn", KEY_GENERATOR),
        "OPERATOR_SECRET_ARN": ref(service, "aws_secretsmanager_secret", "arn", "api-key-rotation"),
    }


def test_static_key_service_names_its_key_as_the_operator(variant):
    variables = environment(variant)
    assert variables["OPERATOR_API_KEY_ID"] == ref(variant.service, "aws_api_gateway_api_key", "id", "service-api-key")
    assert variables["KEY_FACTORY_ROLE_ARN"] == ref(variant.service, "aws_iam_role", "arn", KEY_GENERATOR)
    assert "OPERATOR_SECRET_ARN" not in variables
    assert (variables["ALLOWED_ACCOUNTS"], variables["ALLOWED_REGIONS"]) == ("111122223333", "eu-west-1,eu-central-1")


def test_tenant_policies_stay_out_of_the_environment(variant):
    # Lambda allows 4 KB of environment: tenants (up to 10,000) live in the packaged file instead.
    variables = environment(variant)
    assert not any("444455556666" in value or "acme" in value for value in variables.values())
    assert sum(len(name) + len(value) for name, value in variables.items()) < 1024


def test_environment_is_encrypted_with_the_operations_key(synth):
    function = only(synth.service, "aws_lambda_function", KEY_GENERATOR)
    assert function["kms_key_arn"] == ref(synth.service, "aws_kms_key", "arn", "operations-key")
