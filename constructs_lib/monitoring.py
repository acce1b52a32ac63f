"""Alarms and a dashboard: what tells the operators the service is failing, and what they look at then.

Resources (`ServiceMonitoring`): log metric filters on the key generator's JSON logs (keys created, requests
rejected, unexpected failures); an SNS topic encrypted with the operations key (plus e-mail subscriptions)
that every alarm notifies on alarm and on recovery; alarms on the stage's 5XX count (anomaly detection),
4XX spikes, and each function's errors and throttles; a CloudWatch dashboard.

The key generator reports a rejected request as a function error (the API maps the error prefix to a 4XX),
so its error alarm subtracts rejections: it fires on failures only, not on callers' bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_log_metric_filter import (
    CloudwatchLogMetricFilter,
    CloudwatchLogMetricFilterMetricTransformation,
)
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from .cdk import Fn
from .validation import Problems, matches, non_empty, positive

PERIOD = 300
"""Seconds per alarm and dashboard datapoint."""

# Metric name -> the key generator's log `outcome` it counts (see lambda/kms_key_generator/handler.py).
LOG_METRICS = {"KeysCreated": "created", "KeyRequestsRejected": "rejected", "KeyCreationFailures": "error"}


@dataclass(frozen=True, kw_only=True)
class MonitoredFunction:
    label: str
    """Short name used in alarm names and construct ids, e.g. `key-generator`."""
    function_name: str


@dataclass(frozen=True, kw_only=True)
class ServiceMonitoringProps:
    region: str
    api_name: str
    stage_name: str
    key_generator_log_group: str
    """Log group of the key generator, whose JSON `outcome` field the metric filters count."""
    metric_namespace: str
    functions: tuple[MonitoredFunction, ...]
    """Functions alarmed on errors and throttles; the first is the key generator."""
    kms_key_arn: str
    """Encrypts the alarm topic."""
    alarm_prefix: str
    """Alarm names are `<prefix>-<what>`."""
    topic_name: str
    alarm_emails: tuple[str, ...] = ()
    anomaly_band_width: float = 2.0
    client_error_threshold: int = 100
    alarms: bool = True
    dashboard_name: str | None = None
    """Default: no dashboard."""


def _validate(props: ServiceMonitoringProps) -> None:
    problems = Problems("ServiceMonitoring")
    problems.check("region", props.region, non_empty)
    problems.check("metric_namespace", props.metric_namespace, matches(r"[^:].{0,254}", "1-255 characters"))
    problems.check("functions", props.functions, non_empty)
    for index, function in enumerate(props.functions):
        problems.check(
            f"functions[{index}].label", function.label, matches(r"[a-z0-9-]{1,64}", "a short lowercase label")
        )
        problems.check(f"functions[{index}].function_name", function.function_name, non_empty)
    problems.check("alarm_prefix", props.alarm_prefix, non_empty)
    problems.check("topic_name", props.topic_name, matches(r"[\w-]{1,256}", "1-256 letters, digits, '-' or '_'"))
    problems.check("anomaly_band_width", props.anomaly_band_width, positive)
    problems.check("client_error_threshold", props.client_error_threshold, positive)
    if props.dashboard_name is not None:
        problems.check(
            "dashboard_name", props.dashboard_name, matches(r"[\w-]{1,255}", "1-255 letters, digits, - or _")
        )
    problems.raise_if_any()


class ServiceMonitoring(Construct):
    """Exposes `topic` (None without alarms), `alarms` (name -> alarm) and `dashboard` (or None), and the values
    `topic_arn` and `dashboard_name` (None without them) and `alarm_names`."""

    def __init__(self, scope: Construct, id: str, props: ServiceMonitoringProps) -> None:
        _validate(props)
        super().__init__(scope, id)
        self._props = props
        self.api_dimensions = {"ApiName": props.api_name, "Stage": props.stage_name}
        for metric, outcome in LOG_METRICS.items():
            CloudwatchLogMetricFilter(
                self,
                f"metric-{metric}",
                name=metric,
                log_group_name=props.key_generator_log_group,
                pattern=f'{{ $.outcome = "{outcome}" }}',
                metric_transformation=CloudwatchLogMetricFilterMetricTransformation(
                    name=metric, namespace=props.metric_namespace, value="1", unit="Count"
                ),
            )
        self.topic: SnsTopic | None = None
        self.alarms: dict[str, CloudwatchMetricAlarm] = {}
        if props.alarms:
            self.topic = SnsTopic(self, "alarm-topic", name=props.topic_name, kms_master_key_id=props.kms_key_arn)
            for index, email in enumerate(props.alarm_emails):
                SnsTopicSubscription(
                    self, f"alarm-email-{index}", topic_arn=self.topic.arn, protocol="email", endpoint=email
                )
            self._alarms()
        self.dashboard = (
            CloudwatchDashboard(
                self, "dashboard", dashboard_name=props.dashboard_name, dashboard_body=Fn.jsonencode(self._body())
            )
            if props.dashboard_name
            else None
        )

    @property
    def topic_arn(self) -> str | None:
        return self.topic.arn if self.topic else None

    @property
    def alarm_names(self) -> list[str]:
        return [alarm.alarm_name for alarm in self.alarms.values()]

    @property
    def dashboard_name(self) -> str | None:
        return self.dashboard.dashboard_name if self.dashboard else None

    def _alarm(self, what: str, description: str, **config: Any) -> None:
        props, topic = self._props, self.topic
        assert topic is not None  # alarms are made only with their topic
        self.alarms[what] = CloudwatchMetricAlarm(
            self,
            f"alarm-{what}",
            alarm_name=f"{props.alarm_prefix}-{what}",
            alarm_description=description,
            alarm_actions=[topic.arn],
            ok_actions=[topic.arn],
            treat_missing_data="notBreaching",
            **config,
        )

    def _alarms(self) -> None:
        props = self._props
        self._alarm(
            "api-5xx-anomaly",
            f"5XX responses above the expected band ({props.anomaly_band_width:g} standard deviations)",
            comparison_operator="GreaterThanUpperThreshold",
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold_metric_id="band",
            metric_query=[
                _query("errors", "AWS/ApiGateway", "5XXError", self.api_dimensions, return_data=True),
                CloudwatchMetricAlarmMetricQuery(
                    id="band",
                    expression=f"ANOMALY_DETECTION_BAND(errors, {props.anomaly_band_width:g})",
                    label="5XX expected",
                    return_data=True,
                ),
            ],
        )
        self._alarm(
            "api-4xx-spike",
            f"More than {props.client_error_threshold} 4XX responses in {PERIOD // 60} minutes",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            threshold=props.client_error_threshold,
            namespace="AWS/ApiGateway",
            metric_name="4XXError",
            dimensions=self.api_dimensions,
            statistic="Sum",
            period=PERIOD,
        )
        generator, *others = props.functions
        self._alarm(
            f"{generator.label}-errors",
            "Key generator failed (errors that are not rejected requests)",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            threshold=0,
            metric_query=[
                _query("errors", "AWS/Lambda", "Errors", {"FunctionName": generator.function_name}),
                _query("rejected", props.metric_namespace, "KeyRequestsRejected", None),
                CloudwatchMetricAlarmMetricQuery(
                    id="failures", expression="errors - FILL(rejected, 0)", label="Failures", return_data=True
                ),
            ],
        )
        for function in others:
            self._alarm(
                f"{function.label}-errors",
                f"{function.function_name} failed",
                **_lambda_metric(function, "Errors"),
            )
        for function in props.functions:
            self._alarm(
                f"{function.label}-throttles",
                f"{function.function_name} was throttled (reserved concurrency reached)",
                **_lambda_metric(function, "Throttles"),
            )

    def _body(self) -> dict[str, Any]:
        """Requests, errors and latency of the API; errors, duration and throttles of every function; keys."""
        props = self._props
        api = ["AWS/ApiGateway"]
        api_dims = [value for pair in self.api_dimensions.items() for value in pair]
        functions = props.functions

        def lambda_lines(metric: str, stat: str) -> list[list[Any]]:
            return [
                ["AWS/Lambda", metric, "FunctionName", f.function_name, {"stat": stat, "label": f.label}]
                for f in functions
            ]

        widgets = [
            ("Requests", [[*api, "Count", *api_dims, {"stat": "Sum"}]]),
            (
                "4XX and 5XX",
                [[*api, "4XXError", *api_dims, {"stat": "Sum"}], [*api, "5XXError", *api_dims, {"stat": "Sum"}]],
            ),
            (
                "Latency (ms)",
                [[*api, "Latency", *api_dims, {"stat": stat, "label": stat}] for stat in ("p50", "p99")]
                + [[*api, "IntegrationLatency", *api_dims, {"stat": "p99", "label": "integration p99"}]],
            ),
            (
                "Keys",
                [[props.metric_namespace, metric, {"stat": "Sum", "label": metric}] for metric in LOG_METRICS],
            ),
            ("Lambda errors", lambda_lines("Errors", "Sum")),
            ("Lambda duration p99 (ms)", lambda_lines("Duration", "p99")),
            ("Lambda throttles", lambda_lines("Throttles", "Sum")),
        ]
        return {
            "widgets": [
                {
                    "type": "metric",
                    "x": (index % 2) * 12,
                    "y": (index // 2) * 6,
                    "width": 12,
                    "height": 6,
                    "properties": {
                        "title": title,
                        "region": props.region,
                        "view": "timeSeries",
                        "stacked": False,
                        "period": PERIOD,
                        "metrics": metrics,
                    },
                }
                for index, (title, metrics) in enumerate(widgets)
            ]
        }


def _query(
    id: str, namespace: str, metric: str, dimensions: dict[str, str] | None, *, return_data: bool = False
) -> CloudwatchMetricAlarmMetricQuery:
    return CloudwatchMetricAlarmMetricQuery(
        id=id,
        return_data=return_data or None,
        metric=CloudwatchMetricAlarmMetricQueryMetric(
            namespace=namespace, metric_name=metric, dimensions=dimensions, period=PERIOD, stat="Sum"
        ),
    )


def _lambda_metric(function: MonitoredFunction, metric: str) -> dict[str, Any]:
    return {
        "comparison_operator": "GreaterThanThreshold",
        "evaluation_periods": 1,
        "threshold": 0,
        "namespace": "AWS/Lambda",
        "metric_name": metric,
        "dimensions": {"FunctionName": function.function_name},
        "statistic": "Sum",
        "period": PERIOD,
    }
