"""A private emulator per test module (`local_aws.private`), and boto3 clients for it."""

from __future__ import annotations

import boto3

from local_aws import LocalAws
from local_aws.private import private_emulator as emulator
from tools.local import DUMMY_CREDENTIALS, LocalTarget

__all__ = ["client", "emulator"]

REGION = "us-east-1"


def client(target: LocalTarget | LocalAws, service: str, **options):
    """A boto3 client for anything with an `endpoint` (a deployment target, an in-process emulator)."""
    return boto3.client(
        service,
        endpoint_url=target.endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        **options,
    )
