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

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PINNED = PROJECT_ROOT / "tests" / "fixtures" / "addresses.json"


def addresses(synth_dir: Path) -> dict[str, dict[str, str]]:
    """`{stack: {address: construct path}}` for every managed resource."""
    found: dict[str, dict[str, str]] = {}
    for stack_file in sorted(synth_dir.glob("stacks/*/cdk.tf.json")):
        config = json.loads(stack_file.read_text())
        found[stack_file.parent.name] = {
            f"{rtype}.{name}": body["//"]["metadata"]["path"]
            for rtype, named in sorted(config.get("resource", {}).items())
            for name, body in sorted(named.items())
        }
    return found


def render(found: dict[str, dict[str, str]]) -> str:
    return json.dumps(found, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.addresses", description=__doc__.splitlines()[0])
    parser.add_argument("--synth-dir", type=Path, default=PROJECT_ROOT / "cdktf.out")
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
