"""Construct tests: one construct in a scratch stack (cdktf's `Testing`), never the whole app.

Importing cdktf starts a jsii kernel (about 9 s), so the `cdk` fixture imports it once per session (on the Node 22
that `npm ci` pins: tests/conftest.py sets `JSII_NODE`); every test then builds its own stack in its own testing
app.
Tests assert on the synthesized JSON, and on the exact `ValueError` a bad prop raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="session")
def cdk() -> ModuleType:
    """`constructs_lib.cdk`, the project's one door to the cdktf core."""
    from constructs_lib import cdk

    return cdk


@pytest.fixture
def stack(cdk: ModuleType, tmp_path: Path) -> Any:
    """An empty stack named `test` in a fresh testing app, whose output folder is the test's own: cdktf's default is
    a new `cdktf.outdir.*` in the system temp folder that nothing removes."""
    return cdk.TerraformStack(cdk.Testing.app(outdir=str(tmp_path / "cdktf.out")), "test")


@pytest.fixture
def synth(cdk: ModuleType) -> Callable[[Any], dict[str, Any]]:
    """The synthesized JSON of a stack."""
    return lambda stack: json.loads(cdk.Testing.synth(stack))


@pytest.fixture(scope="session")
def environment(cdk: ModuleType) -> Any:
    from constructs_lib.environment import AwsEnvironment

    return AwsEnvironment(account_id="123456789012", partition="aws", region="eu-west-1")
