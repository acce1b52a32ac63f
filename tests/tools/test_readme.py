"""The README's settings table documents every settings key with its real default."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from constructs_lib import settings as s

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = {
    "service": s.ServiceSettings,
    "api": s.ApiSettings,
    "usage_plans.<name>": s.UsagePlanSettings,
    "lambda": s.LambdaSettings,
    "rotation": s.RotationSettings,
    "observability": s.ObservabilitySettings,
    "domain": s.DomainSettings,
    "waf": s.WafSettings,
    "tenants[]": s.TenantSettings,
    "state": s.StateSettings,
    "adopt": s.AdoptSettings,
}


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z_.<>\[\]]+)` \| `([^`]*)` \|", README.read_text(), flags=re.MULTILINE)
    return dict(rows)


def _default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    return "(required)" if field.default_factory is dataclasses.MISSING else field.default_factory()


def test_every_settings_key_is_documented_with_its_default():
    documented = _documented()
    expected = {}
    for section, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            default = _default(field)
            quoted = isinstance(default, (list, bool, dict)) or default == ""
            shown = json.dumps(default) if quoted else str(default).removesuffix(".0")
            expected[f"{section}.{field.name}"] = shown
    expected["tags"] = "{}"
    assert {key: documented.get(key) for key in expected} == expected
