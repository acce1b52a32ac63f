"""A local AWS emulator: moto's server plus the API Gateway gaps our Terraform stack hits.

``LocalAws`` is imported lazily so that ``python -m local_aws start|stop|status``
stays fast: only the process that serves needs moto.
"""

HEALTH_PATH = "/_local_aws/health"
"""Answered by the emulator itself, so a client can tell it apart from anything else on the port."""

FAULTS_PATH = "/_local_aws/faults"
"""Test-only admin route of the emulator: ``PUT`` a fault configuration, ``GET`` it with counters, ``DELETE`` it."""

FAULTS_ENV = "LOCAL_AWS_FAULTS"
"""The same JSON as ``PUT FAULTS_PATH``, applied when the emulator starts (test-only); read here so ``start`` can
check it without importing botocore when it is unset."""

SERVICE_NAME = "local_aws"


def __getattr__(name: str):
    if name == "LocalAws":
        from .server import LocalAws

        return LocalAws
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
