"""The scratch stack the construct tests build on."""

from pathlib import Path
from typing import Any


def test_a_scratch_stack_writes_into_the_tests_own_folder(stack: Any, tmp_path: Path) -> None:
    """cdktf's testing app would otherwise leave one `cdktf.outdir.*` folder per test in the system temp folder."""
    assert stack.node.root.outdir == str(tmp_path / "cdktf.out")
