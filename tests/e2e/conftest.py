"""End-to-end fixtures: synths with changed configuration or code."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from constructs_lib import api_contract
from constructs_lib.settings import DEFAULT_CONFIG
from tests.support.synth import PROJECT_ROOT, Synth, Synthesizer

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
CHANGED_TEMPLATE_MARKER = "## changed by the e2e test"
NO_WAF_FILE = "no-waf.toml"


def no_waf_config(folder: Path, tags: Mapping[str, str] | None = None) -> Path:
    """config/default.toml with the WAF off (and `tags` added), written to `<folder>/NO_WAF_FILE`.

    The settings of end-to-end modules about anything but the WAF: its web ACL costs Terraform ~5 s of CPU in every
    plan and apply (quiet machine: `plan -target` of the web ACL 9.5 CPU-s, of a KMS key 4.5), more under load. The
    README walkthrough (test_readme_walkthrough.py) applies the default configuration with it, test_hardened.py
    reads it back."""
    text, header = DEFAULT_CONFIG.read_text(), "\n[tags]\n"
    assert header in text and "[waf]" not in text, f"{DEFAULT_CONFIG} changed shape: update no_waf_config"
    added = "".join(f'{key} = "{value}"\n' for key, value in (tags or {}).items())
    config = folder / NO_WAF_FILE
    config.write_text(text.replace(header, header + added) + "\n[waf]\nenabled = false\n")
    return config


@pytest.fixture(scope="session")
def no_waf_synth(tmp_path_factory: pytest.TempPathFactory, synthesizer: Synthesizer) -> Synth:
    """The default configuration without its WAF (`no_waf_config`)."""
    folder = tmp_path_factory.mktemp("synth-no-waf")
    return synthesizer.synth(folder / "out", no_waf_config(folder))


@pytest.fixture(scope="session")
def changed_template_synth(tmp_path_factory: pytest.TempPathFactory, synthesizer: Synthesizer) -> Synth:
    """`no_waf_synth` with a different request mapping template (nothing else changed), as a developer's edit of
    `api_contract.REQUEST_TEMPLATE` would make it: the template is changed for this one synth, then restored."""
    folder = tmp_path_factory.mktemp("synth-changed-template")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_contract, "REQUEST_TEMPLATE", CHANGED_TEMPLATE_MARKER + "\n" + api_contract.REQUEST_TEMPLATE)
        synth = synthesizer.synth(folder / "out", no_waf_config(folder))
    template = next(iter(synth.service["resource"]["aws_api_gateway_integration"].values()))["request_templates"]
    assert template["application/json"].startswith(CHANGED_TEMPLATE_MARKER)
    assert api_contract.REQUEST_TEMPLATE in template["application/json"]
    return synth


@pytest.fixture(scope="session")
def retagged_synth(tmp_path_factory: pytest.TempPathFactory, synthesizer: Synthesizer) -> Synth:
    """`no_waf_synth` with one more provider default tag: an in-place update of every resource."""
    folder = tmp_path_factory.mktemp("synth-retagged")
    return synthesizer.synth(folder / "out", no_waf_config(folder, {"Owner": "platform-team"}))


@pytest.fixture(scope="session")
def tenant_synths(tmp_path_factory: pytest.TempPathFactory, synthesizer: Synthesizer) -> dict[str, Synth]:
    """`three` (tests/fixtures/tenants.toml) and `two` (the same without the middle tenant)."""
    folder = tmp_path_factory.mktemp("synth-tenants")
    runs = {"three": FIXTURES / "tenants.toml", "two": FIXTURES / "tenants-without-globex.toml"}
    return {name: synthesizer.synth(folder / name, config) for name, config in runs.items()}
