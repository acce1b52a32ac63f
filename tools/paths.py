"""Where the project is: the one definition every tool (and `tests/support`) imports."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout: the folder holding `main.py`, `tools/` and `constructs_lib/`."""

SYNTH_DIR = PROJECT_ROOT / "cdktf.out"
"""Where `make synth` (`npx cdktf synth`) writes: the default `--synth-dir` of the tools that read a synth."""

CDKTF_CLI = PROJECT_ROOT / "node_modules" / ".bin" / "cdktf"
"""The cdktf CLI `make deps` installs (`npx cdktf` runs it)."""
