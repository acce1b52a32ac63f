"""Adopting a live deployment of the original Terraform modules: `import` blocks instead of creates.

With `[adopt]` set, each named resource gets a Terraform `import` block (Terraform >= 1.5, cdktf's
`import_from`), so the first `apply` reads the live object into state and then updates it in place to
this app's configuration: the REST API keeps its id and URL, the API key its value, the log group its
events. Without `[adopt]` nothing is emitted. Once a resource is in state its import block is a no-op.

Settings have already checked that every adopted name is the one this app gives the resource (a
different name would plan a replacement) and that an API key is adopted only in static-key mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup

from .. import api_contract
from ..api_gateway import ApiKey, KeyServiceApi, UsagePlan
from ..lambda_function import LambdaFunction
from ..remote_backend import RemoteBackend
from ..settings import Settings
from ..ssm import SecureParameter

# The original modules' outputs this stack renamed -> the new name with the same value. Both are output, so a
# downstream `terraform_remote_state` reading an original name keeps working after adoption. (The original's
# `execution_role_arn`, `execution_role_name` and `ssm_kms_key_arn` kept their names.)
ORIGINAL_OUTPUT_NAMES = {
    "aws_caller_identity_current_account_id": "account_id",
    "cloudwatch_log_group_arns": "log_group_arns",
    "function_name": "lambda_function_name",
    "lambda_arn": "lambda_function_arn",
}


def with_original_output_names(described: Mapping[str, tuple[object, str]]) -> dict[str, tuple[object, str]]:
    """`described` plus each renamed output under its original name too."""
    return dict(described) | {
        original: (described[new][0], f"Same as `{new}`; kept for consumers of the original Terraform modules")
        for original, new in ORIGINAL_OUTPUT_NAMES.items()
    }


def adopt_service(
    settings: Settings,
    *,
    api: KeyServiceApi,
    usage_plan: UsagePlan,
    api_key: ApiKey | None,
    function: LambdaFunction,
    log_groups: Sequence[CloudwatchLogGroup],
    parameter: SecureParameter,
) -> None:
    """Import blocks for the service stack's resources named in `settings.adopt`."""
    adopt = settings.adopt
    if adopt.rest_api_id:
        api_id = adopt.rest_api_id
        api.rest_api.import_from(api_id)
        api.resource.import_from(f"{api_id}/{adopt.resource_id}")
        api.method.import_from(f"{api_id}/{adopt.resource_id}/{api_contract.HTTP_METHOD}")
        # The integration is deliberately not imported: the provider replaces an integration whose
        # `passthrough_behavior` changes (the original's default WHEN_NO_MATCH -> our NEVER), which would
        # plan a destroy. Creating it is an overwrite instead: PutIntegration replaces the method's
        # integration in place, with no conflict. The live stage keeps serving its deployment snapshot
        # until the stage moves to our new deployment, which is created after the integration.
        # The stage's name is taken under the API, so it is adopted too. The old deployment is not: ours
        # replaces it as the stage's deployment and the old one stays in the API's history, unmanaged.
        api.stage.import_from(f"{api_id}/{settings.service.stage}")
    if adopt.usage_plan_id:
        usage_plan.usage_plan.import_from(adopt.usage_plan_id)
    if adopt.api_key_id and api_key is not None:
        api_key.api_key.import_from(adopt.api_key_id)
    by_name = {group.name_input: group for group in log_groups}  # `name` would be a reference token
    for name in adopt.log_group_names:
        by_name[name].import_from(name)
    if adopt.ssm_parameter_name:
        parameter.parameter.import_from(adopt.ssm_parameter_name)
    if adopt.lambda_function_name:
        function.function.import_from(adopt.lambda_function_name)
    if adopt.execution_role_name:
        function.role.import_from(adopt.execution_role_name)


def adopt_remote_state(settings: Settings, backend: RemoteBackend) -> None:
    """Import blocks for the original state bucket and lock table named in `settings.adopt`."""
    if settings.adopt.state_bucket:
        backend.bucket.import_from(settings.adopt.state_bucket)
    if settings.adopt.state_lock_table:
        backend.lock_table.import_from(settings.adopt.state_lock_table)
