"""What the service stack's builders share: one frozen `ServiceContext`, and the `Outputs` they add to.

The builders (`compute`, `api`, `keys`, `edge`, `operations`) each take the stack as scope (construct ids are part
of the Terraform addresses, so every construct stays a child of the stack), the context and the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from ... import construct_ids as ids
from ...environment import AwsEnvironment
from ...kms import operations_key
from ...lambda_function import LambdaCode, LambdaHardening
from ...naming import Names
from ...settings import Settings
from ..adoption import with_original_output_names
from ..base import outputs

LAMBDA_SOURCES = Path(__file__).resolve().parents[3] / "lambda"


@dataclass(frozen=True, kw_only=True)
class ServiceContext:
    """Settings and what every builder derives from them: names, where the stack deploys, the operations key."""

    settings: Settings
    names: Names
    environment: AwsEnvironment
    """Account and partition (references to the stack's data sources) and the region."""
    operations_key: KmsKey
    """Encrypts logs, the alarm topic and Lambda environments."""
    staging_dir: Path
    """Scratch space for packaging Lambda sources (inside the synth output folder)."""

    @classmethod
    def create(cls, stack: Construct, settings: Settings, *, staging_dir: Path) -> ServiceContext:
        """The context of `stack`: adds the data sources `current` and `partition` and the operations key."""
        names = Names(settings.service.name, settings.service.stage)
        environment = AwsEnvironment.of_provider(stack, region=settings.service.region)
        key = operations_key(Construct(stack, ids.OPERATIONS_KEY), alias=names.ops_kms_alias, environment=environment)
        return cls(settings=settings, names=names, environment=environment, operations_key=key, staging_dir=staging_dir)

    @property
    def account_id(self) -> str:
        return self.environment.account_id

    @property
    def region(self) -> str:
        return self.environment.region

    def hardening(self, reserved_concurrency: int) -> LambdaHardening:
        """What every function of the service shares: the operations key, tracing as observability says."""
        return LambdaHardening(
            kms_key_arn=self.operations_key.arn,
            reserved_concurrency=reserved_concurrency,
            tracing=self.settings.observability.tracing,
        )

    def code(self, function: str, generated_files: dict[str, str] | None = None) -> LambdaCode:
        """Sources of `lambda/<function>/` plus the shared modules, staged under this synth's output."""
        return LambdaCode(
            source_dir=LAMBDA_SOURCES / function,
            staging_dir=self.staging_dir / function,
            shared_dir=LAMBDA_SOURCES / "shared",
            generated_files=generated_files or {},
        )


class Outputs:
    """The stack's outputs, added by the builders and declared once by the stack (`declare`).

    cdktf writes outputs sorted by name, so the order they are added in never reaches the JSON.
    """

    def __init__(self) -> None:
        self._described: dict[str, tuple[Any, str]] = {}
        self._sensitive: set[str] = set()

    def add(self, name: str, value: Any, description: str, sensitive: bool = False) -> None:
        """Add output `name`; `sensitive` ones Terraform redacts in plans and `terraform output`."""
        if name in self._described:
            raise ValueError(f"Outputs.add: output {name!r} is added twice")
        self._described[name] = (value, description)
        if sensitive:
            self._sensitive.add(name)

    def value(self, name: str) -> Any:
        """The value of an output added before."""
        return self._described[name][0]

    def declare(self, scope: Construct) -> None:
        """One `TerraformOutput` per output, plus the original modules' names of the renamed ones (adoption)."""
        outputs(scope, with_original_output_names(self._described), sensitive=frozenset(self._sensitive))
