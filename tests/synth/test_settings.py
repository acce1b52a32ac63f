"""Settings: bad files stop the synth with one `file: key: problem` line each, and write nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from constructs_lib.settings import DEFAULT_CONFIG, SettingsError, load_settings
from tests.support.synth import PROJECT_ROOT, synth_env

BAD_SETTINGS = [
    ("unknown_key", "[service]\nnmae = 'x'\n", "service.nmae: unknown key (allowed: environment, name, region, stage)"),
    ("unknown_section", "[servce]\nname = 'x'\n", "servce: unknown key"),
    (
        "wrong_type",
        "[usage_plans.default]\nquota_limit = '1000'\n",
        "usage_plans.default.quota_limit: must be an integer, got str '1000'",
    ),
    (
        "negative_quota",
        "[usage_plans.default]\nquota_limit = -5\n",
        "usage_plans.default.quota_limit: must be > 0, got -5",
    ),
    (
        "zero_rate",
        "[usage_plans.default]\nthrottle_rate_limit = 0\n",
        "usage_plans.default.throttle_rate_limit: must be > 0, got 0",
    ),
    (
        "bad_period",
        "[usage_plans.default]\nquota_period = 'YEAR'\n",
        "usage_plans.default.quota_period: must be one of DAY, WEEK, MONTH, got 'YEAR'",
    ),
    (
        "bad_region",
        "[service]\nregion = 'moon-1'\n",
        "service.region: must be an AWS region code such as eu-west-1, got 'moon-1'",
    ),
    (
        "bad_cidr",
        "[api]\nallowed_source_cidrs = ['10.0.0.300/8']\n",
        "api.allowed_source_cidrs: item 0 ('10.0.0.300/8') must be a CIDR block",
    ),
    (
        "cidr_with_host_bits",
        "[api]\nallowed_source_cidrs = ['10.0.0.1/8']\n",
        "api.allowed_source_cidrs: item 0 ('10.0.0.1/8') must be a CIDR block",
    ),
    (
        "empty_service_name",
        "[service]\nname = ''\n",
        "service.name: must be 2-40 lowercase letters, digits or '-', starting with a letter, got ''",
    ),
    (
        "bool_as_int",
        "[usage_plans.default]\nquota_limit = true\n",
        "usage_plans.default.quota_limit: must be an integer, got bool True",
    ),
    ("unknown_plan", "[api]\nusage_plan = 'gold'\n", "api.usage_plan: names unknown plan 'gold' (known: default)"),
    (
        "bad_account",
        "[lambda]\nallowed_accounts = ['12345']\n",
        "lambda.allowed_accounts: item 0 ('12345') must be a 12-digit AWS account id",
    ),
    (
        "bad_runtime",
        "[lambda]\nruntime = 'python2.7'\n",
        "lambda.runtime: must be one of python3.12, python3.13, got 'python2.7'",
    ),
    (
        "lockfile_not_bool",
        "[state]\nuse_lockfile = 'yes'\n",
        "state.use_lockfile: must be true or false, got str 'yes'",
    ),
    ("bad_bucket", "[state]\nbucket = 'Not_A_Bucket'\n", "state.bucket: must be a valid S3 bucket name"),
    ("not_toml", "[service\n", "not valid TOML"),
    (
        "bad_log_level",
        "[observability]\nexecution_logging = 'DEBUG'\n",
        "observability.execution_logging: must be one of ERROR, INFO, OFF, got 'DEBUG'",
    ),
    (
        "bad_alarm_email",
        "[observability]\nalarm_emails = ['oncall']\n",
        "observability.alarm_emails: item 0 ('oncall') must be an e-mail address",
    ),
    (
        "narrow_band",
        "[observability]\nanomaly_band_width = 0.5\n",
        "observability.anomaly_band_width: must be between 1 and 10, got 0.5",
    ),
    (
        "zero_concurrency",
        "[lambda]\nreserved_concurrency = 0\n",
        "lambda.reserved_concurrency: must be -1 (unreserved) or between 1 and 1000, got 0",
    ),
    ("waf_rate_too_low", "[waf]\nrate_limit = 5\n", "waf.rate_limit: must be between 10 and 2000000000, got 5"),
    (
        "bad_domain",
        "[domain]\nname = 'Keys.Example'\n",
        "domain.name: must be a lowercase DNS name such as keys.example.com, got 'Keys.Example'",
    ),
    (
        "bad_zone",
        "[domain]\nname = 'keys.example.com'\nhosted_zone_id = 'example.com'\n",
        "domain.hosted_zone_id: must be a Route 53 hosted zone id",
    ),
    (
        "zone_without_domain",
        "[domain]\nhosted_zone_id = 'Z0123456789ABC'\n",
        "domain.name: is required when any other domain key is set",
    ),
    (
        "bad_base_path",
        "[domain]\nname = 'keys.example.com'\nbase_path = 'a/b'\n",
        "domain.base_path: must be a single path segment",
    ),
    ("stage_throttle_zero", "[api]\nthrottle_burst_limit = 0\n", "api.throttle_burst_limit: must be > 0, got 0"),
    # A plan's per-key throttle above the stage's never bites: one key could take the whole stage (issue 14, 6).
    (
        "plan_rate_above_stage",
        "[usage_plans.default]\nthrottle_rate_limit = 6\n",
        "usage_plans.default.throttle_rate_limit: plan 'default' gives each key 6 requests/s, more than the stage's 5 "
        "(api.throttle_rate_limit): the plan's limit would never bite",
    ),
    (
        "plan_burst_above_stage",
        "[usage_plans.gold]\nthrottle_burst_limit = 11\n[api]\nusage_plan = 'gold'\n",
        "usage_plans.gold.throttle_burst_limit: plan 'gold' gives each key a burst of 11, more than the stage's 10 "
        "(api.throttle_burst_limit)",
    ),
    (
        "method_throttle_above_stage",
        '[usage_plans.default.method_throttles."/keys/POST"]\nburst_limit = 12\n',
        "usage_plans.default.method_throttles.\"/keys/POST\".burst_limit: plan 'default' gives each key a burst of 12, "
        "more than the stage's 10 (api.throttle_burst_limit)",
    ),
    (
        "stage_lowered_below_default_plan",
        "[api]\nthrottle_rate_limit = 1.5\n",
        "usage_plans.default.throttle_rate_limit: plan 'default' gives each key 2 requests/s, more than the stage's "
        "1.5 (api.throttle_rate_limit): the plan's limit would never bite and one key could take the whole stage from "
        "every other caller; set at most 1.5",
    ),
    # A private API is reached through its VPC endpoints only; the custom domain built here is regional (point 9).
    (
        "private_api_with_custom_domain",
        "[api]\nallowed_vpc_endpoint_ids = ['vpce-0123456789abcdef0']\n[domain]\nname = 'keys.example.com'\n",
        "domain.name: cannot serve a PRIVATE API (api.allowed_vpc_endpoint_ids is set): the custom domain built here "
        "is REGIONAL",
    ),
    # The backend's state key (point 11).
    (
        "state_kms_key_not_a_key",
        "[state]\nkms_key_id = 'my-state-key'\n",
        "state.kms_key_id: must be the state key's ARN, key id, alias name (alias/...) or alias ARN, "
        "got 'my-state-key'",
    ),
    (
        "state_kms_key_other_alias",
        "[state]\nkms_key_id = 'alias/other'\n",
        "state.kms_key_id: names 'alias/other', but the state key's alias is 'alias/kms-key-generator-tfstate' (from "
        "service.name): the bucket policy refuses objects under any other key",
    ),
    (
        "state_kms_key_other_region",
        "[state]\nkms_key_id = 'arn:aws:kms:eu-west-1:111122223333:alias/kms-key-generator-tfstate'\n",
        "state.kms_key_id: is in region 'eu-west-1', but the state bucket and its key are in 'us-east-1'",
    ),
    (
        "deletion_protection_not_bool",
        "[state]\ndeletion_protection = 'on'\n",
        "state.deletion_protection: must be true or false, got str 'on'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD_SETTINGS], ids=[c[0] for c in BAD_SETTINGS])
def test_rejects_bad_settings_naming_file_and_key(tmp_path: Path, text: str, expected: str):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    lines = str(raised.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{config}: ")
    assert expected in lines[0]


def test_reports_every_problem_at_once(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text("[service]\nregion = 'x'\nstage = ''\n[usage_plans.default]\nquota_limit = 0\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    keys = [line.split(": ")[1] for line in str(raised.value).splitlines()]
    assert keys == ["service.region", "service.stage", "usage_plans.default.quota_limit"]


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(SettingsError, match=r"missing\.toml: settings file not found \(set KMSKG_CONFIG"):
        load_settings(tmp_path / "missing.toml")


def test_environment_variable_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "prod.toml"
    config.write_text("[service]\nenvironment = 'prod'\n")
    monkeypatch.setenv("KMSKG_CONFIG", str(config))
    assert load_settings().service.environment == "prod"


def test_omitted_keys_take_documented_defaults(tmp_path: Path):
    config = tmp_path / "empty.toml"
    config.write_text("")
    settings = load_settings(config)
    assert settings.service.name == "kms-key-generator"
    assert settings.state.use_lockfile is True
    assert list(settings.usage_plans) == ["default"]


def test_default_file_is_valid():
    assert load_settings(DEFAULT_CONFIG).service.name == "kms-key-generator"


@pytest.mark.parametrize("case", ["negative_quota", "unknown_key", "bad_cidr"])
def test_bad_settings_stop_the_synth_and_leave_output_untouched(tmp_path: Path, case: str):
    text, expected = next(c[1:] for c in BAD_SETTINGS if c[0] == case)
    config = tmp_path / "bad.toml"
    config.write_text(text)
    outdir = tmp_path / "cdktf.out"
    outdir.mkdir()
    sentinel = outdir / "previous-synth.txt"
    sentinel.write_text("unchanged")
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=PROJECT_ROOT, env=synth_env(outdir, config), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().startswith(f"{config}: ")
    assert expected in result.stderr
    assert sorted(p.name for p in outdir.iterdir()) == ["previous-synth.txt"]
    assert sentinel.read_text() == "unchanged"


FIXTURES = PROJECT_ROOT / "tests" / "fixtures"


@pytest.mark.parametrize(
    "config",
    [DEFAULT_CONFIG, *sorted(path for path in FIXTURES.glob("*.toml") if path.name != "adopt.toml")],
    ids=lambda path: path.name,
)
def test_every_shipped_configuration_is_valid(config: Path):
    """config/default.toml and every fixture pass validation (adopt.toml is a section appended to variant.toml)."""
    load_settings(config)


def test_default_plan_is_below_the_stage_throttle(tmp_path: Path):
    config = tmp_path / "empty.toml"
    config.write_text("")
    settings = load_settings(config)
    plan = settings.usage_plans["default"]
    assert (plan.throttle_rate_limit, plan.throttle_burst_limit) == (2, 4)
    assert plan.throttle_rate_limit < settings.api.throttle_rate_limit
    assert plan.throttle_burst_limit < settings.api.throttle_burst_limit


@pytest.mark.parametrize(
    "text",
    [
        "[usage_plans.default]\nthrottle_rate_limit = 5\nthrottle_burst_limit = 10\n",
        "[api]\nthrottle_rate_limit = 50\nthrottle_burst_limit = 80\n[usage_plans.default]\nthrottle_rate_limit = 40\n",
        '[usage_plans.default.method_throttles."/keys/POST"]\nrate_limit = 5\nburst_limit = 10\n',
    ],
    ids=["plan-equal-to-the-stage", "raised-stage-and-plan", "method-override-equal-to-the-stage"],
)
def test_plans_up_to_the_stage_throttle_are_accepted(tmp_path: Path, text: str):
    config = tmp_path / "plans.toml"
    config.write_text(text)
    load_settings(config)


@pytest.mark.parametrize(
    "kms_key_id",
    [
        "alias/kms-key-generator-tfstate",
        "arn:aws:kms:us-east-1:111122223333:alias/kms-key-generator-tfstate",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
    ids=["alias", "alias-arn", "key-arn", "key-id"],
)
def test_state_kms_key_id_takes_the_forms_the_s3_backend_accepts(tmp_path: Path, kms_key_id: str):
    config = tmp_path / "state.toml"
    config.write_text(f"[state]\nkms_key_id = '{kms_key_id}'\n")
    settings = load_settings(config)
    assert settings.state.backend_kms_key_id(settings.service.name) == kms_key_id


def test_state_kms_key_id_defaults_to_the_state_keys_alias(tmp_path: Path):
    config = tmp_path / "state.toml"
    config.write_text("[service]\nname = 'keys-x'\n")
    settings = load_settings(config)
    assert settings.state.kms_key_id == ""
    assert settings.state.backend_kms_key_id(settings.service.name) == "alias/keys-x-tfstate"
    assert settings.state.deletion_protection is True
