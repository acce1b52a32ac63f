"""One in-process emulator per test module: moto's state is process-wide, so modules share it, tests isolate by
the names they create."""

import pytest

from local_aws import LocalAws


@pytest.fixture(scope="module")
def emulator():
    with LocalAws() as aws:
        yield aws
