"""The one place the app imports the CDK-for-Terraform core library.

cdktf is archived upstream (0.21.0 is its last release) and continues as CDK Terrain (`cdktn`); keeping
every core import here makes that switch a one-file change. The prebuilt provider bindings are imported
where they are used, since they would be regenerated for the fork anyway. `Testing` is here too: the construct
tests (`tests/constructs/`) build one construct in a scratch stack with it.
"""

from cdktf import (
    App,
    AssetType,
    CloudBackend,
    Fn,
    ITerraformDependable,
    LocalBackend,
    NamedCloudWorkspace,
    S3Backend,
    TerraformAsset,
    TerraformIterator,
    TerraformOutput,
    TerraformResourceLifecycle,
    TerraformStack,
    TerraformVariable,
    TerraformVariableValidationConfig,
    Testing,
    Token,
)

__all__ = [
    "App",
    "AssetType",
    "CloudBackend",
    "Fn",
    "ITerraformDependable",
    "LocalBackend",
    "NamedCloudWorkspace",
    "S3Backend",
    "TerraformAsset",
    "TerraformIterator",
    "TerraformOutput",
    "TerraformResourceLifecycle",
    "TerraformStack",
    "TerraformVariable",
    "TerraformVariableValidationConfig",
    "Testing",
    "Token",
]
