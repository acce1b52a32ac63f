"""The account the emulator models owns Route 53 hosted zones that configurations name by id.

A custom domain's config names its hosted zone by id (`hosted_zone_id`), because on AWS that zone is
owned outside the stack (registered domain, delegated zone). moto starts with no zones and invents
random 22-character ids, so no config could name one. The emulator creates each zone of
`SEEDED_HOSTED_ZONES` (public, default account) with its fixed id when it starts, through moto's own
custom-id mechanism, so the zone is a plain moto zone afterwards (records, tags, `GetHostedZone`,
`ListHostedZonesByName`). Seeding is idempotent: a zone that already exists is left as it is.
"""

from __future__ import annotations

from moto.core import DEFAULT_ACCOUNT_ID
from moto.route53.models import HostedZoneIdentifier, route53_backends
from moto.utilities.id_generator import moto_id_manager

SEEDED_HOSTED_ZONES = {"example.test.": "Z0EXAMPLETEST00000001"}
"""Zone name -> fixed hosted zone id, present in every emulator."""

SEED_CALLER_REFERENCE = "local-aws-seed"
SEED_COMMENT = "seeded by local_aws: a zone the emulated account owns"


def seed_hosted_zones(account_id: str = DEFAULT_ACCOUNT_ID) -> None:
    """Create every missing seeded zone in `account_id` (Route 53 is global: one backend per account)."""
    backend = route53_backends[account_id]["global"]
    for name, zone_id in SEEDED_HOSTED_ZONES.items():
        if zone_id in backend.zones:
            continue
        identifier = HostedZoneIdentifier(account_id, name, None)
        moto_id_manager.set_custom_id(identifier, zone_id)
        try:
            backend.create_hosted_zone(
                name, private_zone=False, caller_reference=f"{SEED_CALLER_REFERENCE}-{zone_id}", comment=SEED_COMMENT
            )
        finally:
            moto_id_manager.unset_custom_id(identifier)
