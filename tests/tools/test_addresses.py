"""Resource addresses of the default configuration are pinned: a rename must be deliberate."""

from __future__ import annotations

import json

from tools.addresses import PINNED, addresses

RENAME_HELP = """
Resource addresses changed. Terraform treats a changed address as destroy + create: for API keys, the
REST API, log groups, KMS keys, the state bucket or lock table that means broken clients or lost data.
If the rename is deliberate, keep the resources with a `moved` block per address in the stack
(cdktf: `resource.move_from_id("<old address>")`, or `move_to`/`override_logical_id`), check with
`make diff BASE=main`, then update the pin: `python -m tools.addresses --write` after `make synth`.
"""


def test_resource_addresses_are_pinned(synth):
    pinned = json.loads(PINNED.read_text())
    current = addresses(synth.outdir)
    changes = {
        stack: {
            "removed": sorted(set(pinned.get(stack, {})) - set(current.get(stack, {}))),
            "added": sorted(set(current.get(stack, {})) - set(pinned.get(stack, {}))),
        }
        for stack in sorted(set(pinned) | set(current))
    }
    changed = {stack: c for stack, c in changes.items() if c["removed"] or c["added"]}
    assert not changed, RENAME_HELP + json.dumps(changed, indent=2)
