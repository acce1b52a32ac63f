"""moto gap: an ACM certificate stays `PENDING_VALIDATION` for a minute.

moto issues an Amazon-issued certificate only once `MOTO_ACM_VALIDATION_WAIT` seconds (default 60) have
passed since it was requested, whatever the DNS says; `aws_acm_certificate_validation` and API Gateway
custom domains wait on `ISSUED`, so every apply of a custom domain paid that minute. The emulator issues
the certificate at the first describe after the request (wait 0), as ACM does once the validation record
it asked for exists; an explicit `MOTO_ACM_VALIDATION_WAIT` in the environment still wins.
"""

from __future__ import annotations

import os

from moto import settings

VALIDATION_WAIT_SECONDS = 0


def install() -> None:
    """Set moto's validation wait for this process (idempotent)."""
    settings.ACM_VALIDATION_WAIT = int(os.environ.get("MOTO_ACM_VALIDATION_WAIT", VALIDATION_WAIT_SECONDS))
