"""Compute: the key-generator Lambda, its identity policy (the key factory's rights) and its tenant policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from constructs import Construct

from ... import construct_ids as ids
from ... import policy
from ...environment import AwsEnvironment
from ...lambda_function import LambdaFunction, LambdaFunctionProps
from ...settings import Settings
from ...tenants import POLICIES_FILE, TenantPolicy, policies_file
from .context import Outputs, ServiceContext


def key_generator(scope: Construct, ctx: ServiceContext, outputs: Outputs) -> LambdaFunction:
    """The function behind `POST /keys` (`key-generator`). Its environment is completed by `name_operator` once
    the operator's key or secret exists."""
    settings, names = ctx.settings, ctx.names
    function = LambdaFunction(
        scope,
        ids.KEY_GENERATOR,
        LambdaFunctionProps(
            function_name=names.function,
            role_name=names.execution_role,
            code=ctx.code("kms_key_generator", {POLICIES_FILE: tenant_policies(settings)}),
            runtime=settings.function.runtime,
            memory_size=settings.function.memory_size,
            timeout=settings.function.timeout,
            environment={
                "SERVICE_NAME": settings.service.name,
                "CROSS_ACCOUNT_ROLE_NAME": settings.function.cross_account_role_name,
                "ALLOWED_ACCOUNTS": ",".join(settings.function.allowed_accounts),
                "ALLOWED_REGIONS": ",".join(settings.function.allowed_regions),
            },
            policy_statements=key_factory_statements(settings, ctx.environment),
            hardening=ctx.hardening(settings.function.reserved_concurrency),
        ),
    )
    outputs.add("lambda_function_name", function.function_name, "Name of the key-generator Lambda")
    outputs.add("lambda_function_arn", function.arn, "ARN of the key-generator Lambda")
    outputs.add("execution_role_name", function.role_name, "Name of the Lambda execution role")
    outputs.add("execution_role_arn", function.role_arn, "ARN of the Lambda execution role")
    return function


def name_operator(function: LambdaFunction, operator: Mapping[str, str]) -> None:
    """Complete the key generator's environment with its own role and who the operator is (the handler's tenant
    `operator`): known only once its key or secret exists, which is after the function."""
    function.add_environment({"KEY_FACTORY_ROLE_ARN": function.role_arn, **operator})


def tenant_policies(settings: Settings) -> str:
    """`tenants.json` for the key generator: each tenant's accounts, regions (the service's when it names
    none) and alias prefix. `{}` without tenants, so the handler always finds the file."""
    return policies_file(
        TenantPolicy(
            id=tenant.id,
            allowed_accounts=tuple(tenant.allowed_accounts),
            allowed_regions=tuple(tenant.allowed_regions or settings.function.allowed_regions),
            alias_prefix=tenant.alias_prefix,
        )
        for tenant in settings.tenants
    )


def key_factory_statements(settings: Settings, environment: AwsEnvironment) -> tuple[dict[str, Any], ...]:
    """The key factory's identity policy: create keys, alias them, read API key tags, assume the allowed
    accounts' roles; nothing on keys it did not create.

    Rights on a key (tag, rotation, alias, deletion, policy) come from the key policy the handler gives at
    CreateKey (`handler.key_policy`), which names this role: so they reach only keys it created. Tags are
    no ownership proof here: whoever may tag could tag any key as its own. CreateKey is refused for a
    lockout-safety bypass, a multi-Region key or external key material (KMS fills these condition keys
    with the parameters' defaults when a request omits them). CreateAlias also needs the key side, which
    only those key policies grant. GetTags, unlike GetApiKey, returns no key value.
    """
    partition, account_id = environment.partition, environment.account_id
    own = f"arn:{partition}:kms:*:{account_id}"
    statements = [
        policy.statement(
            "CreateSingleRegionKmsKeys",
            ["kms:CreateKey"],
            "*",
            condition={
                "Bool": {"kms:BypassPolicyLockoutSafetyCheck": "false", "kms:MultiRegion": "false"},
                "StringEquals": {"kms:KeyOrigin": "AWS_KMS"},
            },
        ),
        policy.statement("CreateAliases", ["kms:CreateAlias"], f"{own}:alias/*"),
        policy.statement("DescribeKeys", ["kms:DescribeKey"], f"{own}:key/*"),
        policy.statement(
            "ReadApiKeyTags", ["apigateway:GET"], f"arn:{partition}:apigateway:{environment.region}::/tags/*"
        ),
    ]
    accounts = sorted(
        set(settings.function.allowed_accounts).union(*(tenant.allowed_accounts for tenant in settings.tenants))
    )
    if accounts:
        role = settings.function.cross_account_role_name
        statements += [
            policy.statement(
                "AssumeAllowedAccountsRole",
                ["sts:AssumeRole"],
                [f"arn:{partition}:iam::{account}:role/{role}" for account in accounts],
            ),
            # The own account is known only at apply time; its keys are made without any role.
            policy.statement(
                "NeverAssumeOwnAccountsRole",
                ["sts:AssumeRole"],
                f"arn:{partition}:iam::{account_id}:role/{role}",
                effect="Deny",
            ),
        ]
    return tuple(statements)
