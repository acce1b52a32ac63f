"""Bearer-token authentication for tenants: the `Tokens` table and the token-authorizer Lambda.

Resources: KMS key + alias for the table (`kms.service_key`), the DynamoDB table keyed by the SHA-256 hex
of each token (on-demand, point-in-time recovery, encrypted with that key, deletion protection unless turned
off; it stores hashes, never tokens), and the authorizer function (`lambda_function.LambdaFunction`: own role
allowed `GetItem` on this table only, own never-expiring log group). `api_gateway.KeyServiceApi` wires it to the
method.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from .dynamodb import encrypted_table, grant_get_item
from .environment import AwsEnvironment
from .kms import ServiceKeyProps, grant_decrypt, service_key
from .lambda_function import LambdaCode, LambdaFunction, LambdaFunctionProps, LambdaHardening


@dataclass(frozen=True, kw_only=True)
class TokenAuthorizerProps:
    table_name: str
    function_name: str
    code: LambdaCode
    runtime: str
    hardening: LambdaHardening | None = None
    kms_alias: str
    environment: AwsEnvironment
    """The account whose DynamoDB (in this region) may use the table's key."""
    deletion_protection: bool = True
    """DynamoDB deletion protection on the tokens table: destroying it would revoke every issued token."""


class TokenAuthorizer(Construct):
    """Exposes `table` and `function` (a `LambdaFunction`), and the values `table_name`, `function_name`,
    `invoke_arn` and `log_group` (the function's). Its parts validate their own props (`service_key`,
    `encrypted_table`, `LambdaFunction`)."""

    def __init__(self, scope: Construct, id: str, props: TokenAuthorizerProps) -> None:
        super().__init__(scope, id)
        key = service_key(
            self,
            ServiceKeyProps(
                description=f"Encrypts the token table {props.table_name}",
                alias=props.kms_alias,
                service="dynamodb",
                sid_prefix="DynamoDb",
                environment=props.environment,
            ),
        )
        self.table = encrypted_table(
            self,
            "tokens-table",
            name=props.table_name,
            hash_key="token_hash",
            kms_key_arn=key.arn,
            deletion_protection=props.deletion_protection,
        )
        self.function = LambdaFunction(
            self,
            "function",
            LambdaFunctionProps(
                function_name=props.function_name,
                role_name=props.function_name,
                code=props.code,
                runtime=props.runtime,
                timeout=5,
                hardening=props.hardening,
                environment={"TOKENS_TABLE": self.table.name},
            ),
        )
        grant_get_item(self.table, self.function, sid="LookUpTokenHashes")
        grant_decrypt([key], self.function, sid="DecryptTokenTable")

    @property
    def table_name(self) -> str:
        return self.table.name

    @property
    def function_name(self) -> str:
        return self.function.function_name

    @property
    def invoke_arn(self) -> str:
        return self.function.invoke_arn

    @property
    def log_group(self) -> CloudwatchLogGroup:
        return self.function.log_group
