"""Operations: where the service runs, its logs, alarms and dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from ... import construct_ids as ids
from ...api_gateway import KeyServiceApi
from ...authorizer import TokenAuthorizer
from ...lambda_function import LambdaFunction
from ...monitoring import MonitoredFunction, ServiceMonitoring, ServiceMonitoringProps
from ...rotation import ApiKeyRotation
from ..base import state_outputs
from .context import Outputs, ServiceContext


def build(
    scope: Construct,
    ctx: ServiceContext,
    outputs: Outputs,
    *,
    api: KeyServiceApi,
    key_generator: LambdaFunction,
    rotation: ApiKeyRotation | None,
    token_authorizer: TokenAuthorizer | None,
    log_groups: Sequence[CloudwatchLogGroup],
) -> ServiceMonitoring | None:
    """Alarms and the dashboard over the API and every function (when observability asks for them), and the
    outputs that say where the service runs and logs."""
    outputs.add("account_id", ctx.account_id, "AWS account the service is deployed in")
    outputs.add("region", ctx.region, "AWS region of the service")
    for name, (value, description) in state_outputs(ctx.settings).items():
        outputs.add(name, value, description)
    outputs.add(
        "operations_kms_key_arn",
        ctx.operations_key.arn,
        "KMS key encrypting logs, the alarm topic and Lambda environments",
    )
    outputs.add("log_group_names", [g.name for g in log_groups], "CloudWatch log groups of the service (never expire)")
    outputs.add("log_group_arns", [g.arn for g in log_groups], "ARNs of the service's log groups")

    observability = ctx.settings.observability
    if not (observability.alarms or observability.dashboard):
        return None
    functions = [MonitoredFunction(label="key-generator", function_name=key_generator.function_name)]
    if rotation:
        functions.append(MonitoredFunction(label="rotation", function_name=rotation.function_name))
    if token_authorizer:
        functions.append(MonitoredFunction(label="authorizer", function_name=token_authorizer.function_name))
    names = ctx.names
    monitoring = ServiceMonitoring(
        scope,
        ids.MONITORING,
        ServiceMonitoringProps(
            region=ctx.region,
            api_name=api.rest_api_name,
            stage_name=api.stage_name,
            key_generator_log_group=key_generator.log_group_name,
            metric_namespace=names.metric_namespace,
            functions=tuple(functions),
            kms_key_arn=ctx.operations_key.arn,
            alarm_prefix=names.alarm_prefix,
            topic_name=names.alarm_topic,
            alarm_emails=tuple(observability.alarm_emails),
            anomaly_band_width=observability.anomaly_band_width,
            client_error_threshold=observability.client_error_threshold,
            alarms=observability.alarms,
            dashboard_name=names.dashboard if observability.dashboard else None,
        ),
    )
    if monitoring.topic_arn:
        outputs.add("alarm_topic_arn", monitoring.topic_arn, "SNS topic every alarm notifies (subscribe to it)")
        outputs.add("alarm_names", monitoring.alarm_names, "CloudWatch alarms on the API and the functions")
    if monitoring.dashboard_name:
        outputs.add("dashboard_name", monitoring.dashboard_name, "CloudWatch dashboard of the service")
    return monitoring
