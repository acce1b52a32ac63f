"""A private emulator per test module (`local_aws.private`), and boto3 clients for it."""

from __future__ import annotations

from local_aws import LocalAws
from local_aws.private import private_emulator as emulator
from tools.local import LocalTarget, emulator_client

__all__ = ["client", "emulator"]

REGION = "us-east-1"


def client(target: LocalTarget | LocalAws, service: str, **options):
    """A boto3 client for anything with an `endpoint` (a deployment target, an in-process emulator)."""
    return emulator_client(target.endpoint, service, REGION, **options)
