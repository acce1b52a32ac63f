"""One rule for every AWS name, so the log group, the SSM path and the roles always agree.

Names derive from the service name and stage only; changing them renames (and so replaces) resources,
which `make diff` flags.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Names:
    """AWS names of one deployment of the service."""

    service: str
    stage: str

    @property
    def function(self) -> str:
        return self.service

    @property
    def function_log_group(self) -> str:
        """Lambda writes to exactly this group; creating it ourselves lets us set retention."""
        return f"/aws/lambda/{self.function}"

    @property
    def execution_role(self) -> str:
        return f"{self.service}-lambda-execution"

    @property
    def rest_api(self) -> str:
        return self.service

    @property
    def api_key(self) -> str:
        return f"{self.service}-{self.stage}"

    def usage_plan(self, plan: str) -> str:
        return f"{self.service}-{plan}"

    @property
    def client_certificate(self) -> str:
        return f"{self.service}-{self.stage}"

    @property
    def ssm_parameter(self) -> str:
        return f"/APIGateway/APIKeys/{self.service}"

    @property
    def ssm_kms_alias(self) -> str:
        return f"alias/{self.service}-ssm"

    @property
    def state_kms_alias(self) -> str:
        return f"alias/{self.service}-tfstate"

    @property
    def api_key_secret(self) -> str:
        return f"{self.service}/api-key"

    @property
    def rotation_function(self) -> str:
        return f"{self.service}-api-key-rotation"

    @property
    def secret_kms_alias(self) -> str:
        return f"alias/{self.service}-secret"

    @property
    def tokens_table(self) -> str:
        return f"{self.service}-tokens"

    @property
    def token_authorizer(self) -> str:
        return f"{self.service}-token-authorizer"

    @property
    def tokens_kms_alias(self) -> str:
        return f"alias/{self.service}-tokens"

    @property
    def access_log_group(self) -> str:
        return f"/aws/apigateway/{self.service}-{self.stage}-access"

    @property
    def apigateway_cloudwatch_role(self) -> str:
        return f"{self.service}-apigateway-cloudwatch"

    @property
    def ops_kms_alias(self) -> str:
        """Key for operational data: log groups, the alarm topic, Lambda environments."""
        return f"alias/{self.service}-ops"

    @property
    def alarm_topic(self) -> str:
        return f"{self.service}-{self.stage}-alarms"

    @property
    def alarm_prefix(self) -> str:
        return f"{self.service}-{self.stage}"

    @property
    def dashboard(self) -> str:
        return f"{self.service}-{self.stage}"

    @property
    def metric_namespace(self) -> str:
        """Namespace of the metrics the service's log filters publish (keys created, rejections)."""
        return f"KmsKeyGenerator/{self.service}"

    @property
    def web_acl(self) -> str:
        return f"{self.service}-{self.stage}"

    @property
    def waf_log_group(self) -> str:
        """WAF only logs to groups whose name starts with `aws-waf-logs-`."""
        return f"aws-waf-logs-{self.service}-{self.stage}"

    @property
    def remote_state_stack(self) -> str:
        return f"{self.service}-remote-state"

    @property
    def service_stack(self) -> str:
        return self.service
