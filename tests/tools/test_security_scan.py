"""`make scan`: checkov finds nothing to fail in what users deploy, with few, explained global skips.

Scans the default configuration and the one with every production feature on (custom domain included).
The variant configuration turns features off on purpose (no WAF, no tracing), so it is not held to the scan.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools import scan

pytestmark = pytest.mark.seconds(19)

README = Path(__file__).resolve().parents[2] / "README.md"
MAX_SKIPS = 10


@pytest.fixture(scope="module")
def results(synths) -> dict[str, scan.ScanResult]:
    return {name: scan.scan(synths[name].outdir / "stacks") for name in ("default", "hardened")}


@pytest.mark.parametrize("config", ["default", "hardened"])
def test_no_check_fails(results, config):
    result = results[config]
    assert result.failed == (), "\n".join(" ".join(failure) for failure in result.failed)
    assert result.passed > 100


def test_hardened_config_is_checked_on_its_extra_resources(results):
    """The custom domain (TLS 1.2), the authorizer's function and the e-mail subscription add checks."""
    assert results["hardened"].passed > results["default"].passed


def test_skips_are_few_and_each_has_a_reason():
    skips = scan.skipped_checks()
    assert 0 < len(skips) <= MAX_SKIPS
    for check, reason in skips.items():
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), check
        assert len(reason) > 20, f"{check} needs a one-line reason"


def test_readme_states_the_passed_count(results):
    stated = re.search(r"`make scan` reports \*\*(\d+) passed\*\*, 0 failed", README.read_text())
    assert stated, "README must state the scan's passed count"
    assert int(stated.group(1)) == results["default"].passed


def test_a_failing_check_is_reported(tmp_path):
    """The scan is a gate: an unencrypted queue fails it."""
    stack = tmp_path / "stacks" / "bad"
    stack.mkdir(parents=True)
    (stack / "cdk.tf.json").write_text('{"resource": {"aws_sqs_queue": {"plain": {"name": "plain"}}}}')
    result = scan.scan(tmp_path / "stacks")
    assert "CKV_AWS_27" in {check for check, _, _ in result.failed}  # SQS queue not encrypted


def test_missing_checkov_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(scan.CHECKOV_ENV_VAR, str(tmp_path / "nowhere" / "checkov"))
    with pytest.raises(scan.ToolError, match="checkov not found .* run `make scan`"):
        scan.checkov_binary()
