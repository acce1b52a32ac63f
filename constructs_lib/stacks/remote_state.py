"""The remote-state stack: bootstraps the bucket and lock table the other stacks keep state in.

Its own state is local (it cannot live in the bucket it creates); the path is relative so synth output
is the same on every machine.
"""

from __future__ import annotations

from constructs import Construct

from .. import construct_ids as ids
from ..cdk import LocalBackend, TerraformStack
from ..environment import AwsEnvironment
from ..naming import Names
from ..remote_backend import RemoteBackend, RemoteBackendProps
from ..settings import Settings
from .adoption import adopt_remote_state
from .base import aws_provider, outputs

# Relative to `cdktf.out/stacks/<stack>`: the project root, where cdktf itself keeps local state.
LOCAL_STATE_PATH = "../../../terraform.{stack}.tfstate"


class RemoteStateStack(TerraformStack):
    def __init__(self, scope: Construct, id: str, settings: Settings) -> None:
        super().__init__(scope, id)
        LocalBackend(self, path=LOCAL_STATE_PATH.format(stack=id))
        aws_provider(self, settings)
        names = Names(settings.service.name, settings.service.stage)
        backend = RemoteBackend(
            self,
            ids.REMOTE_BACKEND,
            RemoteBackendProps(
                bucket_name=settings.state.bucket,
                lock_table_name=settings.state.lock_table,
                kms_alias=names.state_kms_alias,
                environment=AwsEnvironment.of_provider(self, region=settings.service.region),
                deletion_protection=settings.state.deletion_protection,
            ),
        )
        adopt_remote_state(settings, backend)
        outputs(
            self,
            {
                "state_bucket_name": (backend.bucket.bucket, "S3 bucket holding Terraform state"),
                "state_bucket_arn": (backend.bucket.arn, "ARN of the state bucket"),
                "lock_table_name": (backend.lock_table.name, "DynamoDB table Terraform locks state with"),
                "lock_table_arn": (backend.lock_table.arn, "ARN of the lock table"),
                "state_kms_key_arn": (
                    backend.kms_key.arn,
                    "KMS key encrypting state objects and the lock table (the bucket refuses objects under any other)",
                ),
            },
        )
