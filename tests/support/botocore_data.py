"""botocore's data files parsed once per test process, not once per session.

Every new botocore `Session` builds its own `Loader`, which parses `endpoints.json` and each service model again. The
Lambda tests start a fresh "container" (a new boto3 session) in every test, as a cold start does, and moto, the
emulator clients and the CLIs under test make sessions of their own: in tests/lambda/test_kms_key_generator.py, 7.6 of
its 22 s went to JSON decoding. The files are read-only package data, so one `Loader` per search path serves every
session alike; what the tests exercise (sessions, clients, caches of the code under test) is made fresh as before.
"""

from __future__ import annotations

import functools

import botocore.loaders
import botocore.session


def share_loader() -> None:
    """New botocore sessions get the process's `Loader` for their data path (`AWS_DATA_PATH` still decides it)."""
    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)
