"""`make scan`: checkov over every synthesized stack, with the skips in `.checkov.yaml`.

checkov lives in its own virtualenv (`.venv-checkov`, pinned by `tools/checkov-requirements.txt`) so its
many pins never constrain the app's; `$KMSKG_CHECKOV` may name another checkov executable. Exit status 1
when any check fails, so `make scan` gates like a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.paths import PROJECT_ROOT, SYNTH_DIR
from tools.synth_output import STACKS, stack_files
from tools.terraform import ToolError

CHECKOV_ENV_VAR = "KMSKG_CHECKOV"
CHECKOV_VENV = PROJECT_ROOT / ".venv-checkov"
CONFIG = PROJECT_ROOT / ".checkov.yaml"


@dataclass(frozen=True)
class ScanResult:
    passed: int
    failed: tuple[tuple[str, str, str], ...]
    """`(check id, check name, resource)` of each failed check."""


def skipped_checks(config: Path = CONFIG) -> dict[str, str]:
    """`check id -> reason` of the global skips in `.checkov.yaml` (reasons are the line's comment)."""
    skips, in_list = {}, False
    for line in config.read_text(encoding="utf-8").splitlines():
        if not line.startswith((" ", "-")):
            in_list = line.startswith("skip-check:")
        elif in_list and line.strip().startswith("- "):
            check, _, reason = line.strip()[2:].partition("#")
            skips[check.strip()] = reason.strip()
    return skips


def checkov_binary() -> str:
    path = Path(os.environ.get(CHECKOV_ENV_VAR) or CHECKOV_VENV / "bin" / "checkov")
    if not path.is_file():
        raise ToolError(
            f"checkov not found at {path}: run `make scan` (it installs .venv-checkov) or set {CHECKOV_ENV_VAR}"
        )
    return str(path)


def scan(stacks_dir: Path) -> ScanResult:
    """Scan every stack under `stacks_dir` (a synth's `stacks/` folder)."""
    if not stack_files(stacks_dir):
        raise ToolError(f"no synthesized stacks under {stacks_dir}: run `make synth` first")
    run = subprocess.run(
        [checkov_binary(), "--config-file", str(CONFIG), "-d", str(stacks_dir), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode not in (0, 1):  # 1: some check failed
        raise ToolError(f"checkov exited {run.returncode}: {run.stderr.strip()[-2000:]}")
    reports = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    passed, failed = 0, []
    for report in reports:
        passed += report["summary"]["passed"]
        results = report.get("results", {})
        failed += [(c["check_id"], c["check_name"], c["resource"]) for c in results.get("failed_checks", [])]
    return ScanResult(passed=passed, failed=tuple(sorted(failed)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=Path, default=SYNTH_DIR / STACKS)
    args = parser.parse_args(argv)
    try:
        result = scan(args.stacks)
    except ToolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for check_id, name, resource in result.failed:
        print(f"FAILED {check_id} {name}: {resource}")
    print(
        f"checkov: {result.passed} passed, {len(result.failed)} failed, {len(skipped_checks())} skipped (.checkov.yaml)"
    )
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
