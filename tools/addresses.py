"""Resource addresses of the synthesized stacks, pinned in `tests/fixtures/addresses.json`.

A Terraform address (`type.logical_id`) is derived from the construct path: renaming a construct id,
moving a construct, or changing how ids are hashed (a cdktf upgrade, the switch to CDK Terrain) renames
the address, and Terraform then destroys and recreates the resource. The pin makes that loud.

    python -m tools.addresses [--synth-dir cdktf.out] [--write]   # print, or update the pin on purpose
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.paths import PROJECT_ROOT, SYNTH_DIR
from tools.synth_output import read_stack, resources_by_address, stack_paths

PINNED = PROJECT_ROOT / "tests" / "fixtures" / "addresses.json"


def addresses(synth_dir: Path) -> dict[str, dict[str, str]]:
    """`{stack: {address: construct path}}` for every managed resource (no stacks: empty)."""
    return {
        stack: {address: resource.path for address, resource in resources_by_address(stack, read_stack(path)).items()}
        for stack, path in stack_paths(synth_dir).items()
    }


def render(found: dict[str, dict[str, str]]) -> str:
    return json.dumps(found, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.addresses", description=__doc__.splitlines()[0])
    parser.add_argument("--synth-dir", type=Path, default=SYNTH_DIR)
    parser.add_argument("--write", action="store_true", help=f"overwrite {PINNED.relative_to(PROJECT_ROOT)}")
    args = parser.parse_args(argv)
    text = render(addresses(args.synth_dir))
    if args.write:
        PINNED.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
