"""tools.synth_diff: crafted base/head pairs built from the session's real default synth, small synthetic stacks
(`for_each` instance keys, settings of each side), the CLI, and the `make diff` / `make plan-local` outcomes."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support.synth import PROJECT_ROOT, SERVICE_STACK, STATE_STACK, Synth, resources
from tools import synth_diff
from tools.synth_diff import (
    CRITICAL_TYPES,
    AttributeChange,
    Rename,
    Report,
    base_settings,
    code,
    diff_stacks,
    for_each_keys,
    render_markdown,
    synth_env,
)

pytestmark = pytest.mark.seconds(43)

ROW_UNCHANGED_STATE = f"| `{STATE_STACK}` | 0 | 0 | 0 | 0 | 0 |"


# --- helpers --------------------------------------------------------------------------------------------------


@pytest.fixture
def base(synth: Synth) -> dict[str, dict[str, Any]]:
    return {SERVICE_STACK: synth.service, STATE_STACK: synth.state}


@pytest.fixture
def head(base: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return copy.deepcopy(base)


def name_of(stack: dict[str, Any], rtype: str) -> str:
    """The first (sorted) logical name of a type: the stack's composition changes, the tests should not care."""
    names = sorted(resources(stack, rtype))
    assert names, f"no {rtype} in the synthesized stack"
    return names[0]


def put(stack: dict[str, Any], rtype: str, name: str, body: dict[str, Any]) -> str:
    stack.setdefault("resource", {}).setdefault(rtype, {})[name] = body
    return f"{rtype}.{name}"


def addresses(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{rtype}.{name}": body for rtype, by_name in stack["resource"].items() for name, body in by_name.items()}


def section(markdown: str, heading: str, stack: str = SERVICE_STACK) -> list[str]:
    """The lines of `### heading` inside `## Stack `stack``, heading included, up to the blank line."""
    lines = markdown.splitlines()
    start = lines.index(f"## Stack `{stack}`")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    block = lines[start:end]
    if f"### {heading}" not in block:
        return []
    first = block.index(f"### {heading}")
    last = next((i for i in range(first, len(block)) if block[i] == ""), len(block))
    return block[first:last]


def warning_block(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    if "> [!WARNING]" not in lines:
        return []
    first = lines.index("> [!WARNING]")
    last = next((i for i in range(first, len(lines)) if lines[i] == ""), len(lines))
    return lines[first:last]


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| `")]


def metadata(stack: str, path: str, unique_id: str) -> dict[str, Any]:
    return {"metadata": {"path": f"{stack}/{path}", "uniqueId": unique_id}}


# --- no change ------------------------------------------------------------------------------------------------


def test_identical_synths_report_no_changes(base, head):
    report = diff_stacks(base, head)
    assert not report.has_changes
    assert report.warnings == ()
    assert render_markdown(report, "main", "working tree").splitlines() == [
        "## Synth diff: `main` → `working tree`",
        "",
        "No changes.",
        "",
        f"Stacks compared: `{SERVICE_STACK}`, `{STATE_STACK}`.",
    ]


def test_only_metadata_differs_is_no_change(base, head):
    service = head[SERVICE_STACK]
    for by_name in service["resource"].values():
        for body in by_name.values():
            body["//"]["metadata"]["path"] += "-moved-in-the-tree"
    service["//"]["metadata"]["version"] = "9.9.9"
    assert not diff_stacks(base, head).has_changes


# --- (1) a new tenant: an API key and its usage-plan key -----------------------------------------------------


def test_added_tenant_resources_are_listed(base, head):
    service = head[SERVICE_STACK]
    plan = name_of(service, "aws_api_gateway_usage_plan")
    put(service, "aws_api_gateway_api_key", "tenant-acme_api-key_1A2B3C4D", {
        "//": metadata(SERVICE_STACK, "tenant-acme/api-key", "tenant-acme_api-key_1A2B3C4D"),
        "description": "API key of tenant acme",
        "enabled": True,
        "name": "kms-key-generator-acme",
    })  # fmt: skip
    put(service, "aws_api_gateway_usage_plan_key", "tenant-acme_usage-plan-key_5E6F7A8B", {
        "//": metadata(SERVICE_STACK, "tenant-acme/usage-plan-key", "tenant-acme_usage-plan-key_5E6F7A8B"),
        "key_id": "${aws_api_gateway_api_key.tenant-acme_api-key_1A2B3C4D.id}",
        "key_type": "API_KEY",
        "usage_plan_id": "${aws_api_gateway_usage_plan." + plan + ".id}",
    })  # fmt: skip

    report = diff_stacks(base, head)
    markdown = render_markdown(report)

    assert report.has_changes
    assert report.warnings == ()
    assert table_rows(markdown) == [f"| `{SERVICE_STACK}` | 2 | 0 | 0 | 0 | 0 |", ROW_UNCHANGED_STATE]
    assert section(markdown, "Added") == [
        "### Added",
        "- `aws_api_gateway_api_key.tenant-acme_api-key_1A2B3C4D`",
        "- `aws_api_gateway_usage_plan_key.tenant-acme_usage-plan-key_5E6F7A8B`",
    ]
    for heading in ("Removed", "Changed", "Outputs", "Terraform and providers"):
        assert section(markdown, heading) == []
    assert warning_block(markdown) == []
    assert f"## Stack `{STATE_STACK}`" not in markdown


# --- (2) a usage-plan quota ------------------------------------------------------------------------------------


def test_changed_quota_limit_is_an_in_place_change(base, head):
    plan = name_of(head[SERVICE_STACK], "aws_api_gateway_usage_plan")
    quota = head[SERVICE_STACK]["resource"]["aws_api_gateway_usage_plan"][plan]["quota_settings"]
    old_limit = quota["limit"]
    quota["limit"] = old_limit + 4000

    report = diff_stacks(base, head)
    markdown = render_markdown(report)

    (change,) = report.stack(SERVICE_STACK).changed
    assert change.changes == (AttributeChange("quota_settings.limit", old_limit, old_limit + 4000),)
    assert not change.replaced
    assert report.warnings == ()
    assert table_rows(markdown)[0] == f"| `{SERVICE_STACK}` | 0 | 0 | 1 | 0 | 0 |"
    assert section(markdown, "Changed") == [
        "### Changed",
        f"- `aws_api_gateway_usage_plan.{plan}`",
        f"  - `quota_settings.limit`: `{old_limit}` -> `{old_limit + 4000}`",
    ]


def test_list_elements_are_addressed_by_index(base, head):
    plan = name_of(head[SERVICE_STACK], "aws_api_gateway_usage_plan")
    head[SERVICE_STACK]["resource"]["aws_api_gateway_usage_plan"][plan]["api_stages"][0]["stage"] = "v2"
    markdown = render_markdown(diff_stacks(base, head))
    old_stage = base[SERVICE_STACK]["resource"]["aws_api_gateway_usage_plan"][plan]["api_stages"][0]["stage"]
    assert section(markdown, "Changed") == [
        "### Changed",
        f"- `aws_api_gateway_usage_plan.{plan}`",
        f'  - `api_stages[0].stage`: `"{old_stage}"` -> `"v2"`',
    ]


# --- (3) a renamed construct id --------------------------------------------------------------------------------


def test_renamed_log_group_warns_and_suggests_a_moved_block(base, head):
    old_name = name_of(head[SERVICE_STACK], "aws_cloudwatch_log_group")
    new_name = "renamed_log-group_0A1B2C3D"
    old_address, new_address = f"aws_cloudwatch_log_group.{old_name}", f"aws_cloudwatch_log_group.{new_name}"
    referrers = sorted(
        address
        for address, body in addresses(base[SERVICE_STACK]).items()
        if address != old_address and old_address in json.dumps(body)
    )
    referring_outputs = sorted(
        name for name, output in base[SERVICE_STACK]["output"].items() if old_address in json.dumps(output)
    )
    # What renaming the construct does: a new logical name, its metadata, and every reference to it.
    text = json.dumps(head[SERVICE_STACK]).replace(old_address, new_address)
    service = head[SERVICE_STACK] = json.loads(text)
    log_groups = service["resource"]["aws_cloudwatch_log_group"]
    log_groups[new_name] = log_groups.pop(old_name)
    log_groups[new_name]["//"] = metadata(SERVICE_STACK, "renamed/log-group", new_name)

    report = diff_stacks(base, head)
    markdown = render_markdown(report)

    assert report.stack(SERVICE_STACK).renames == (Rename("aws_cloudwatch_log_group", old_address, new_address),)
    assert [(w.kind, w.moved) for w in report.warnings] == [("renamed", (old_address, new_address))]
    assert warning_block(markdown) == [
        "> [!WARNING]",
        "> **Terraform will destroy resources in this change.**",
        ">",
        f"> **`{SERVICE_STACK}`**: `{old_address}` is renamed to `{new_address}`: Terraform plans destroy + create,"
        " not a rename (its log events are deleted).",
        "> Keep the existing object by adding a `moved` block to the stack (in CDKTF: "
        f'`.move_from_id("{old_address}")` on the new resource, or keep the old logical ID with '
        f'`.override_logical_id("{old_name}")`):',
        ">",
        "> ```hcl",
        "> moved {",
        f">   from = {old_address}",
        f">   to   = {new_address}",
        "> }",
        "> ```",
    ]
    assert section(markdown, "Added") == ["### Added", f"- `{new_address}` (renamed from `{old_address}`)"]
    assert section(markdown, "Removed") == ["### Removed", f"- `{old_address}` (renamed to `{new_address}`)"]
    # Every resource and output that referred to the log group changes from the old to the new address.
    changed = section(markdown, "Changed")
    assert [line for line in changed if line.startswith("- ")] == [f"- `{address}`" for address in referrers]
    outputs = section(markdown, "Outputs")
    assert [line for line in outputs if line.startswith("- ")] == [f"- Changed `{name}`" for name in referring_outputs]
    for line in changed + outputs:
        if line.startswith("  - "):
            old, new = line.split(" -> ")
            assert old_name in old and new_name in new, line


def test_rename_with_a_small_difference_is_still_a_rename(base, head):
    service = head[SERVICE_STACK]
    old_name = name_of(service, "aws_kms_key")
    key = service["resource"]["aws_kms_key"].pop(old_name)
    key["description"] += " (renamed)"
    service["resource"]["aws_kms_key"]["renamed-kms-key_9F8E7D6C"] = key
    report = diff_stacks(base, head)
    assert report.stack(SERVICE_STACK).renames == (
        Rename(
            "aws_kms_key",
            f"aws_kms_key.{old_name}",
            "aws_kms_key.renamed-kms-key_9F8E7D6C",
            differences=("description",),
        ),
    )
    markdown = render_markdown(report)
    assert "The arguments also differ in `description`." in markdown
    assert "the key is scheduled for deletion; data encrypted under it becomes unreadable" in markdown


def add_tenant(stack: dict[str, Any], tenant: str, suffix: str) -> None:
    plan = name_of(stack, "aws_api_gateway_usage_plan")
    put(stack, "aws_api_gateway_api_key", f"tenant-{tenant}_api-key_{suffix}", {
        "description": f"API key of tenant {tenant}",
        "enabled": True,
        "name": f"kms-key-generator-{tenant}",
    })  # fmt: skip
    put(stack, "aws_api_gateway_usage_plan_key", f"tenant-{tenant}_usage-plan-key_{suffix}", {
        "key_id": f"${{aws_api_gateway_api_key.tenant-{tenant}_api-key_{suffix}.id}}",
        "key_type": "API_KEY",
        "usage_plan_id": "${aws_api_gateway_usage_plan." + plan + ".id}",
    })  # fmt: skip


def test_replacing_one_tenant_by_another_is_not_a_rename(base, head):
    """The usage-plan keys differ only in `key_id`, but it refers to a different (not renamed) API key."""
    add_tenant(base[SERVICE_STACK], "acme", "11111111")
    add_tenant(head[SERVICE_STACK], "zeta", "22222222")
    report = diff_stacks(base, head)
    assert report.stack(SERVICE_STACK).renames == ()
    assert [(w.kind, w.address) for w in report.warnings] == [
        ("removed", "aws_api_gateway_api_key.tenant-acme_api-key_11111111")
    ]


def test_renamed_tenant_renames_its_usage_plan_key_too(base, head):
    """Round two: once the API key pair is found, the usage-plan key's `key_id` reference matches."""
    add_tenant(base[SERVICE_STACK], "acme", "11111111")
    add_tenant(head[SERVICE_STACK], "acme", "22222222")
    renames = diff_stacks(base, head).stack(SERVICE_STACK).renames
    assert [(r.old, r.new, r.differences) for r in renames] == [
        (
            "aws_api_gateway_api_key.tenant-acme_api-key_11111111",
            "aws_api_gateway_api_key.tenant-acme_api-key_22222222",
            (),
        ),
        (
            "aws_api_gateway_usage_plan_key.tenant-acme_usage-plan-key_11111111",
            "aws_api_gateway_usage_plan_key.tenant-acme_usage-plan-key_22222222",
            (),
        ),
    ]


def test_unrelated_removal_and_addition_of_one_type_is_not_a_rename(base, head):
    service = head[SERVICE_STACK]
    old_name = name_of(service, "aws_cloudwatch_log_group")
    service["resource"]["aws_cloudwatch_log_group"].pop(old_name)
    service["resource"]["aws_cloudwatch_log_group"]["audit_7777AAAA"] = {"name": "/audit", "retention_in_days": 30}
    report = diff_stacks(base, head)
    assert report.stack(SERVICE_STACK).renames == ()
    assert [(w.kind, w.address) for w in report.warnings] == [("removed", f"aws_cloudwatch_log_group.{old_name}")]
    address = f"aws_cloudwatch_log_group.{old_name}"
    expected = f"> **`{SERVICE_STACK}`**: `{address}` is destroyed: its log events are deleted."
    assert expected in warning_block(render_markdown(report))


# --- (4) the mapping template ----------------------------------------------------------------------------------

BASE_TEMPLATE = """{
  "Account": $input.json('$.account'),
  "Region": $input.json('$.region'),
  "KeyUsage": $input.json('$.key_usage')
}
"""
HEAD_TEMPLATE = BASE_TEMPLATE.replace('"KeyUsage"', '"Usage"')


def test_changed_mapping_template_shows_old_and_new_around_the_difference(base, head):
    integration = name_of(head[SERVICE_STACK], "aws_api_gateway_integration")
    base[SERVICE_STACK]["resource"]["aws_api_gateway_integration"][integration]["request_templates"] = {
        "application/json": BASE_TEMPLATE
    }
    head[SERVICE_STACK]["resource"]["aws_api_gateway_integration"][integration]["request_templates"] = {
        "application/json": HEAD_TEMPLATE
    }

    markdown = render_markdown(diff_stacks(base, head))

    assert section(markdown, "Changed") == [
        "### Changed",
        f"- `aws_api_gateway_integration.{integration}`",
        '  - `request_templates["application/json"]`: '
        # The window starts a third of MAX_VALUE_CHARS before the first difference.
        """`…": $input.json('$.region'),\\n  \\"KeyUsage\\": $input.json('$.key_usage')\\n}\\n"` -> """
        """`…": $input.json('$.region'),\\n  \\"Usage\\": $input.json('$.key_usage')\\n}\\n"`""",
    ]


def test_long_values_are_truncated(base, head):
    integration = name_of(head[SERVICE_STACK], "aws_api_gateway_integration")
    templates = head[SERVICE_STACK]["resource"]["aws_api_gateway_integration"][integration]["request_templates"]
    templates["application/json"] = "X" * 500
    (line,) = [line for line in section(render_markdown(diff_stacks(base, head)), "Changed") if "->" in line]
    new = line.split(" -> ")[1]
    assert new == '`"' + "X" * 99 + "…`"


# --- sensitive values ------------------------------------------------------------------------------------------


def test_api_key_value_is_masked_and_its_change_replaces_the_key(base, head):
    key = "tenant_api-key_ABCD1234"
    for stacks, value in ((base, "old-secret-value-0123456789"), (head, "new-secret-value-0123456789")):
        put(stacks[SERVICE_STACK], "aws_api_gateway_api_key", key, {"name": "tenant", "value": value})

    report = diff_stacks(base, head)
    markdown = render_markdown(report)

    assert "secret-value" not in markdown
    assert section(markdown, "Changed") == [
        "### Changed",
        f"- `aws_api_gateway_api_key.{key}` **replaced** (forced by `value`)",
        "  - `value`: (sensitive) -> (sensitive)",
    ]
    assert warning_block(markdown)[2:] == [
        ">",
        f"> **`{SERVICE_STACK}`**: `aws_api_gateway_api_key.{key}` is replaced (destroyed and re-created) because "
        "`value` changed: clients lose the key value they hold.",
    ]


def test_ssm_parameter_and_secret_values_are_masked_but_references_are_not(base, head):
    parameter = name_of(head[SERVICE_STACK], "aws_ssm_parameter")
    sides = ((base, "old-parameter-secret", "alias/old"), (head, "new-parameter-secret", "alias/new"))
    for stacks, value, key_id in sides:
        body = stacks[SERVICE_STACK]["resource"]["aws_ssm_parameter"][parameter]
        body["value"], body["insecure_value"], body["key_id"] = value, value, key_id
        put(stacks[SERVICE_STACK], "aws_secretsmanager_secret_version", "db_version_1234", {
            "secret_id": f"${{{key_id}}}", "secret_string": value
        })  # fmt: skip
    markdown = render_markdown(diff_stacks(base, head))
    assert "parameter-secret" not in markdown
    assert section(markdown, "Changed") == [
        "### Changed",
        "- `aws_secretsmanager_secret_version.db_version_1234`",
        '  - `secret_id`: `"${alias/old}"` -> `"${alias/new}"`',
        "  - `secret_string`: (sensitive) -> (sensitive)",
        f"- `aws_ssm_parameter.{parameter}`",
        "  - `insecure_value`: (sensitive) -> (sensitive)",
        '  - `key_id`: `"alias/old"` -> `"alias/new"`',
        "  - `value`: (sensitive) -> (sensitive)",
    ]


def test_password_like_values_are_masked_in_any_resource(base, head):
    function = name_of(head[SERVICE_STACK], "aws_lambda_function")
    body = head[SERVICE_STACK]["resource"]["aws_lambda_function"][function]
    body.setdefault("environment", {}).setdefault("variables", {})["DB_PASSWORD"] = "hunter2-hunter2"
    body["ephemeral_storage"] = {"size": 512, "api_token": "hunter2-token"}  # a whole new block: masked inside
    markdown = render_markdown(diff_stacks(base, head))
    assert "hunter2" not in markdown
    assert section(markdown, "Changed")[1:] == [
        f"- `aws_lambda_function.{function}`",
        "  - `environment.variables.DB_PASSWORD`: (absent) -> (sensitive)",
        '  - `ephemeral_storage`: (absent) -> `{"api_token": "(sensitive)", "size": 512}`',
    ]


def test_sensitive_outputs_are_masked(base, head):
    for stacks in (base, head):
        outputs = stacks[SERVICE_STACK].setdefault("output", {})
        outputs["demo_secret"] = {"description": "A secret", "sensitive": True, "value": "${demo.old.value}"}
        outputs["demo_plain"] = {"value": "us-east-1"}
        outputs["demo_becomes_sensitive"] = {"value": "stage-secret"}
        outputs["demo_gone"] = {"value": "x"}
    outputs = head[SERVICE_STACK]["output"]
    outputs["demo_secret"].update(value="${demo.new.value}", description="The key")
    outputs["demo_added"] = {"sensitive": True, "value": "literal-secret-output"}
    outputs["demo_plain"]["value"] = "eu-west-1"
    outputs["demo_becomes_sensitive"].update(sensitive=True, value="stage-secret-2")
    del outputs["demo_gone"]

    markdown = render_markdown(diff_stacks(base, head))

    assert "demo.old" not in markdown and "demo.new" not in markdown
    assert "literal-secret-output" not in markdown and "stage-secret" not in markdown
    assert section(markdown, "Outputs") == [
        "### Outputs",
        "- Added `demo_added`",
        "- Removed `demo_gone`",
        "- Changed `demo_becomes_sensitive`",
        "  - `sensitive`: (absent) -> `true`",
        "  - `value`: (sensitive) -> (sensitive)",
        "- Changed `demo_plain`",
        '  - `value`: `"us-east-1"` -> `"eu-west-1"`',
        "- Changed `demo_secret`",
        '  - `description`: `"A secret"` -> `"The key"`',
        "  - `value`: (sensitive) -> (sensitive)",
    ]
    assert table_rows(markdown)[0] == f"| `{SERVICE_STACK}` | 0 | 0 | 0 | 5 | 0 |"


# --- terraform block and providers -----------------------------------------------------------------------------


def test_backend_and_provider_changes_have_their_own_section(base, head):
    service = head[SERVICE_STACK]
    service["terraform"]["backend"]["s3"]["key"] = "other/terraform.tfstate"
    service["terraform"]["required_providers"]["aws"]["version"] = "6.0.0"
    service["provider"]["aws"][0]["region"] = "eu-west-1"
    service["provider"]["aws"][0]["secret_key"] = "AKIA-not-really"
    old = base[SERVICE_STACK]

    markdown = render_markdown(diff_stacks(base, head))

    assert "not-really" not in markdown
    assert section(markdown, "Terraform and providers") == [
        "### Terraform and providers",
        f'- `provider.aws[0].region`: `"{old["provider"]["aws"][0]["region"]}"` -> `"eu-west-1"`',
        "- `provider.aws[0].secret_key`: (absent) -> (sensitive)",
        f'- `terraform.backend.s3.key`: `"{old["terraform"]["backend"]["s3"]["key"]}"` -> `"other/terraform.tfstate"`',
        f"- `terraform.required_providers.aws.version`: "
        f'`"{old["terraform"]["required_providers"]["aws"]["version"]}"` -> `"6.0.0"`',
    ]
    assert table_rows(markdown)[0] == f"| `{SERVICE_STACK}` | 0 | 0 | 0 | 0 | 4 |"


def test_import_blocks_have_their_own_section(base, head):
    service = head[SERVICE_STACK]
    rest_api = f"aws_api_gateway_rest_api.{name_of(service, 'aws_api_gateway_rest_api')}"
    service["import"] = [{"to": rest_api, "id": "a1b2c3d4e5"}]
    service["//"]["metadata"]["imports"] = {"aws_api_gateway_rest_api": ["listed by cdktf"]}

    report = diff_stacks(base, head)
    markdown = render_markdown(report)

    assert report.has_changes and report.warnings == ()
    assert report.stack(SERVICE_STACK).imports_added == ((rest_api, "a1b2c3d4e5"),)
    assert section(markdown, "Imports") == [
        "### Imports",
        "The next apply adopts these existing objects (address ← id) instead of creating them:",
        f"- `{rest_api}` ← `a1b2c3d4e5`",
    ]
    assert section(markdown, "Terraform and providers") == []
    assert table_rows(markdown)[0] == f"| `{SERVICE_STACK}` | 0 | 0 | 0 | 0 | 0 |"

    removed = render_markdown(diff_stacks(head, base))
    assert section(removed, "Imports") == [
        "### Imports",
        f"- no longer imported: `{rest_api}` ← `a1b2c3d4e5` (a no-op once the object is in state)",
    ]


# --- destructive changes ---------------------------------------------------------------------------------------


def test_removed_stateful_resource_warns(base, head):
    table = name_of(head[STATE_STACK], "aws_dynamodb_table")
    del head[STATE_STACK]["resource"]["aws_dynamodb_table"][table]

    report = diff_stacks(base, head)
    markdown = render_markdown(report)

    assert [(w.stack, w.kind, w.address) for w in report.warnings] == [
        (STATE_STACK, "removed", f"aws_dynamodb_table.{table}")
    ]
    assert warning_block(markdown) == [
        "> [!WARNING]",
        "> **Terraform will destroy resources in this change.**",
        ">",
        f"> **`{STATE_STACK}`**: `aws_dynamodb_table.{table}` is destroyed: its items are deleted.",
    ]
    assert section(markdown, "Removed", STATE_STACK) == ["### Removed", f"- `aws_dynamodb_table.{table}`"]


def test_removed_non_critical_resource_does_not_warn(base, head):
    rtype = next(rtype for rtype in sorted(head[SERVICE_STACK]["resource"]) if rtype not in CRITICAL_TYPES)
    del head[SERVICE_STACK]["resource"][rtype][name_of(head[SERVICE_STACK], rtype)]
    report = diff_stacks(base, head)
    assert report.has_changes and report.warnings == ()


def test_force_new_change_of_a_stateful_resource_warns(base, head):
    log_group = name_of(head[SERVICE_STACK], "aws_cloudwatch_log_group")
    body = head[SERVICE_STACK]["resource"]["aws_cloudwatch_log_group"][log_group]
    old_name = body["name"]
    body["name"] = "/aws/lambda/renamed"
    body["retention_in_days"] = 30

    report = diff_stacks(base, head)
    markdown = render_markdown(report)

    assert section(markdown, "Changed")[1:3] == [
        f"- `aws_cloudwatch_log_group.{log_group}` **replaced** (forced by `name`)",
        f'  - `name`: `"{old_name}"` -> `"/aws/lambda/renamed"`',
    ]
    assert [(w.kind, w.address) for w in report.warnings] == [("replaced", f"aws_cloudwatch_log_group.{log_group}")]
    assert (
        f"> **`{SERVICE_STACK}`**: `aws_cloudwatch_log_group.{log_group}` is replaced (destroyed and re-created)"
        " because `name` changed: its log events are deleted."
    ) in warning_block(markdown)


def test_in_place_changes_of_stateful_resources_do_not_warn(base, head):
    rest_api = name_of(head[SERVICE_STACK], "aws_api_gateway_rest_api")
    head[SERVICE_STACK]["resource"]["aws_api_gateway_rest_api"][rest_api]["name"] = "renamed-api"
    head[SERVICE_STACK]["resource"]["aws_api_gateway_rest_api"][rest_api]["description"] = "new"
    report = diff_stacks(base, head)
    assert report.has_changes and report.warnings == ()
    assert not report.stack(SERVICE_STACK).changed[0].replaced


def test_new_and_removed_stacks(base, head):
    head["tenant-stack"] = {"resource": {"aws_s3_bucket": {"b": {"bucket": "tenant"}}}}
    del head[STATE_STACK]
    report = diff_stacks(base, head)
    markdown = render_markdown(report)
    rows = table_rows(markdown)
    assert rows[1].startswith(f"| `{STATE_STACK}` (stack removed) | 0 | ")
    assert rows[2] == "| `tenant-stack` (new stack) | 1 | 0 | 0 | 0 | 0 |"
    removed_kinds = {(w.stack, w.kind) for w in report.warnings}
    assert removed_kinds == {(STATE_STACK, "removed")}
    assert section(markdown, "Added", "tenant-stack") == ["### Added", "- `aws_s3_bucket.b`"]


def test_data_sources_are_compared_but_never_warned_about(base, head):
    data = head[SERVICE_STACK]["data"]
    rtype = sorted(data)[0]
    name = sorted(data[rtype])[0]
    del data[rtype][name]
    report = diff_stacks(base, head)
    assert report.stack(SERVICE_STACK).removed == (f"data.{rtype}.{name}",)
    assert report.warnings == ()


def test_inline_code_survives_backticks():
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"


# --- CLI -------------------------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.synth_diff", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_compares_two_synthesized_folders(synth: Synth, tmp_path: Path):
    head_dir = tmp_path / "head"
    shutil.copytree(synth.outdir, head_dir)
    stack_file = head_dir / "stacks" / SERVICE_STACK / "cdk.tf.json"
    stack = json.loads(stack_file.read_text())
    plan = name_of(stack, "aws_api_gateway_usage_plan")
    old_limit = stack["resource"]["aws_api_gateway_usage_plan"][plan]["quota_settings"]["limit"]
    stack["resource"]["aws_api_gateway_usage_plan"][plan]["quota_settings"]["limit"] = 7
    stack_file.write_text(json.dumps(stack, indent=2))

    result = run_cli("--base-dir", str(synth.outdir), "--head-dir", str(head_dir), "--output", str(tmp_path / "c.md"))

    assert result.returncode == 1, result.stderr
    assert result.stdout == (tmp_path / "c.md").read_text()
    assert result.stdout.startswith(f"## Synth diff: `{synth.outdir}` → `{head_dir}`\n")
    assert section(result.stdout, "Changed") == [
        "### Changed",
        f"- `aws_api_gateway_usage_plan.{plan}`",
        f"  - `quota_settings.limit`: `{old_limit}` -> `7`",
    ]


def test_cli_two_synths_of_one_commit_are_no_change(synths: dict[str, Synth]):
    """Also shows the synth is deterministic, so the tool never reports noise."""
    result = run_cli("--base-dir", str(synths["default"].outdir), "--head-dir", str(synths["default_again"].outdir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\nNo changes.\n" in result.stdout


def test_cli_errors_exit_2(tmp_path: Path):
    missing = run_cli("--base-dir", str(tmp_path / "nope"), "--head-dir", str(tmp_path))
    assert missing.returncode == 2
    assert "no synthesized stacks" in missing.stderr
    assert run_cli("--head-dir", str(tmp_path)).returncode == 2  # neither --base nor --base-dir
    bad_ref = run_cli("--base", "no-such-ref-for-synth-diff", "--head-dir", str(tmp_path))
    assert bad_ref.returncode == 2
    assert "'no-such-ref-for-synth-diff' is not a commit" in bad_ref.stderr


def _worktrees() -> str:
    return subprocess.run(["git", "worktree", "list"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout


def test_cli_real_base_path_synthesizes_head_in_a_worktree_slow(synth: Synth):
    """The real `--base HEAD` path: HEAD is checked out in a temporary worktree, synthesized and the worktree
    removed. The head side reuses the session's synth of the working tree rather than synthesizing it again;
    HEAD vs. uncommitted edits may or may not differ, and the exit code must say which."""
    before = _worktrees()
    result = run_cli("--base", "HEAD", "--head-dir", str(synth.outdir))
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout.startswith(f"## Synth diff: `HEAD` → `{synth.outdir}`\n")
    assert ("\nNo changes.\n" in result.stdout) == (result.returncode == 0)
    assert _worktrees() == before


# --- for_each instance keys (synthetic stacks: no synth needed) -------------------------------------------------

API_KEYS = "aws_api_gateway_api_key.tenants_api-keys_0A1B2C3D"
PLAN_KEYS = "aws_api_gateway_usage_plan_key.tenants_usage-plan-keys_4E5F6A7B"
# What a CDKTF iterator over a computed list writes (the custom domain's validation records).
COMPUTED_FOR_EACH = "${{ for key, val in tolist(aws_acm_certificate.c.domain_validation_options): val.name => val }}"


def tenant_stack(*tenants: str) -> dict[str, Any]:
    """The shape the tenants construct synthesizes: two resources with `for_each` over literal maps."""
    stack: dict[str, Any] = {"resource": {"aws_api_gateway_rest_api": {"api_rest-api_11223344": {"name": "svc"}}}}
    if tenants:
        put(stack, *API_KEYS.split("."), {
            "for_each": {tenant: {"enabled": True, "name": f"svc-{tenant}"} for tenant in tenants},
            "enabled": "${each.value.enabled}",
            "name": "${each.value.name}",
        })  # fmt: skip
        put(stack, *PLAN_KEYS.split("."), {
            "for_each": {tenant: "general" for tenant in tenants},
            "key_id": f"${{{API_KEYS}[each.key].id}}",
            "key_type": "API_KEY",
        })  # fmt: skip
    return stack


def diff_tenants(base: list[str], head: list[str]) -> Report:
    return diff_stacks({SERVICE_STACK: tenant_stack(*base)}, {SERVICE_STACK: tenant_stack(*head)})


@pytest.mark.parametrize(
    ("for_each", "expected"),
    [
        ({"globex": {}, "acme": {}}, ("acme", "globex")),
        (["b", "a", "b"], ("a", "b")),
        ([1, True], ("1", "true")),  # Terraform converts a set's elements to strings
        ('${toset(["eu-west-1", "us-east-1"])}', ("eu-west-1", "us-east-1")),  # a CDKTF list iterator
        ("${local.tenants}", ("acme", "globex")),
        ("${toset(local.regions)}", ("eu-west-1",)),
        ({}, ()),
        ("${local.computed}", None),  # a local that is itself an expression
        ("${local.missing}", None),
        ("${var.tenants}", None),
        (COMPUTED_FOR_EACH, None),
        ("${toset(var.regions)}", None),
        ({"${var.name}": 1}, None),
        ([{"a": 1}], None),
    ],
)
def test_for_each_keys_are_read_from_literals_and_literal_locals(for_each: Any, expected: tuple[str, ...] | None):
    stack_locals = {"tenants": {"acme": 1, "globex": 2}, "regions": ["eu-west-1"], "computed": "${var.tenants}"}
    assert for_each_keys(for_each, stack_locals) == expected


def test_first_tenant_names_its_instance_keys():
    report = diff_tenants([], ["acme"])
    markdown = render_markdown(report)
    assert report.stack(SERVICE_STACK).instance_keys == {API_KEYS: ("acme",), PLAN_KEYS: ("acme",)}
    assert section(markdown, "Added") == [
        "### Added",
        f"- `{API_KEYS}`: for_each keys `acme`",
        f"- `{PLAN_KEYS}`: for_each keys `acme`",
    ]
    assert report.warnings == ()


def test_last_tenants_removed_name_their_instance_keys():
    markdown = render_markdown(diff_tenants(["acme", "globex"], []))
    assert section(markdown, "Removed") == [
        "### Removed",
        f"- `{API_KEYS}`: for_each keys `acme`, `globex`",
        f"- `{PLAN_KEYS}`: for_each keys `acme`, `globex`",
    ]
    assert f"`{API_KEYS}` is destroyed: clients lose the key value they hold." in "\n".join(warning_block(markdown))


def test_computed_and_empty_for_each_say_so():
    head = tenant_stack()
    put(head, "aws_route53_record", "domain_validation-record_55667788", {
        "for_each": COMPUTED_FOR_EACH,
        "name": "${each.value.resource_record_name}",
    })  # fmt: skip
    put(head, "aws_ssm_parameter", "none_parameter_99AABBCC", {"for_each": {}, "name": "/p/${each.key}"})
    markdown = render_markdown(diff_stacks({SERVICE_STACK: tenant_stack()}, {SERVICE_STACK: head}))
    assert section(markdown, "Added") == [
        "### Added",
        "- `aws_route53_record.domain_validation-record_55667788`: for_each keys computed at plan time",
        "- `aws_ssm_parameter.none_parameter_99AABBCC`: for_each over no keys (no instances)",
    ]


def test_changed_for_each_names_the_keys_that_appear_and_disappear():
    report = diff_tenants(["acme", "initech"], ["acme", "globex"])
    markdown = render_markdown(report)
    assert section(markdown, "Changed") == [
        "### Changed",
        f"- `{API_KEYS}`",
        "  - for_each keys added: `globex`",
        "  - for_each keys removed: `initech`",
        '  - `for_each.globex`: (absent) -> `{"enabled": true, "name": "svc-globex"}`',
        '  - `for_each.initech`: `{"enabled": true, "name": "svc-initech"}` -> (absent)',
        f"- `{PLAN_KEYS}`",
        "  - for_each keys added: `globex`",
        "  - for_each keys removed: `initech`",
        '  - `for_each.globex`: (absent) -> `"general"`',
        '  - `for_each.initech`: `"general"` -> (absent)',
    ]
    # The removed tenant's API key is destroyed (its usage-plan attachment is not a critical type).
    assert [(w.kind, w.address) for w in report.warnings] == [("removed", f'{API_KEYS}["initech"]')]
    assert warning_block(markdown)[3] == (
        f'> **`{SERVICE_STACK}`**: `{API_KEYS}["initech"]` is destroyed: clients lose the key value they hold.'
    )


def test_for_each_over_a_local_changes_with_the_local():
    """The resource's JSON is the same on both sides: only the `locals` entry it iterates over changes."""
    base, head = tenant_stack("acme"), tenant_stack("acme")
    for stack, tenants in ((base, ["acme"]), (head, ["acme", "globex", "hooli"])):
        stack["locals"] = {"tenants": {tenant: f"svc-{tenant}" for tenant in tenants}}
        put(stack, "aws_cloudwatch_log_group", "tenant-logs_DDEEFF00", {
            "for_each": "${local.tenants}", "name": "/tenants/${each.key}"
        })  # fmt: skip
    markdown = render_markdown(diff_stacks({SERVICE_STACK: base}, {SERVICE_STACK: head}))
    assert section(markdown, "Changed") == [
        "### Changed",
        "- `aws_cloudwatch_log_group.tenant-logs_DDEEFF00`",
        "  - for_each keys added: `globex`, `hooli`",
    ]
    assert section(markdown, "Terraform and providers")[1:] == [
        '- `locals.tenants.globex`: (absent) -> `"svc-globex"`',
        '- `locals.tenants.hooli`: (absent) -> `"svc-hooli"`',
    ]


def test_changed_computed_for_each_says_keys_are_computed():
    base, head = tenant_stack(), tenant_stack()
    for stack, variable in ((base, "old"), (head, "new")):
        put(stack, "aws_ssm_parameter", "p_01020304", {"for_each": f"${{toset(var.{variable})}}", "name": "/p"})
    markdown = render_markdown(diff_stacks({SERVICE_STACK: base}, {SERVICE_STACK: head}))
    assert section(markdown, "Changed") == [
        "### Changed",
        "- `aws_ssm_parameter.p_01020304`",
        "  - for_each keys computed at plan time",
        '  - `for_each`: `"${toset(var.old)}"` -> `"${toset(var.new)}"`',
    ]


def test_many_instance_keys_are_counted_past_the_listed_ones():
    tenants = [f"t{index:03d}" for index in range(synth_diff.MAX_LISTED_KEYS + 7)]
    markdown = render_markdown(diff_tenants([], tenants))
    line = section(markdown, "Added")[1]
    assert line.endswith(f"`t{synth_diff.MAX_LISTED_KEYS - 1:03d}` and 7 more")
    assert line.count("`t") == synth_diff.MAX_LISTED_KEYS


# --- settings of each side ---------------------------------------------------------------------------------------

DEFAULT = "`config/default.toml`"


def test_base_config_is_read_in_the_working_tree(tmp_path: Path):
    """A path relative to the working tree, so it may be a file the base revision does not have."""
    assert base_settings(tmp_path, "HEAD", Path("config/default.toml"), "config/other.toml") == (
        PROJECT_ROOT / "config" / "default.toml",
        f"{DEFAULT} from the working tree",
    )
    outside = tmp_path / "plain.toml"
    assert base_settings(tmp_path, "HEAD", outside, None) == (outside, f"`{outside}` from the working tree")


def test_base_reads_the_same_settings_file_as_the_base_revision_has_it(tmp_path: Path):
    tree = tmp_path / "base-tree"
    (tree / "config").mkdir(parents=True)
    (tree / "config" / "default.toml").write_text("")
    for config_env in ("config/default.toml", str(PROJECT_ROOT / "config" / "default.toml")):
        assert base_settings(tree, "main", None, config_env) == (tree / "config" / "default.toml", DEFAULT)


def test_a_settings_file_the_base_revision_lacks_falls_back_to_its_default(tmp_path: Path):
    assert base_settings(tmp_path, "main", None, "config/adopt.toml") == (
        None,
        f"{DEFAULT} (`config/adopt.toml` is not in `main`)",
    )
    assert base_settings(tmp_path, "main", None, None) == (None, DEFAULT)


def test_a_settings_file_outside_the_working_tree_is_one_file_for_both_sides(tmp_path: Path):
    outside = tmp_path / "prod.toml"
    assert base_settings(tmp_path / "tree", "main", None, str(outside)) == (outside, f"`{outside}`")


def test_synth_env_names_the_settings_file_or_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("KMSKG_CONFIG", "config/inherited.toml")
    assert synth_env(tmp_path, tmp_path / "adopt.toml")["KMSKG_CONFIG"] == str(tmp_path / "adopt.toml")
    env = synth_env(tmp_path, None)
    assert "KMSKG_CONFIG" not in env  # the synthesized tree's own default, never the caller's file
    assert env["CDKTF_OUTDIR"] == str(tmp_path)


def write_synth(folder: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    """A synth output folder as `load_stacks` reads it without a manifest."""
    for name, stack in stacks.items():
        path = folder / "stacks" / name / "cdk.tf.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(stack))
    return folder


def test_migration_review_compares_settings_without_and_with_adopt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`--base HEAD --base-config <settings without [adopt]>` with `KMSKG_CONFIG=<settings with it>`: the real
    worktree of HEAD, each side synthesized (here: a stand-in for `main.py`) with its own settings file."""
    plain = tmp_path / "prod.toml"
    plain.write_text("[rotation]\nenabled = false\n")
    adopt = tmp_path / "prod-adopt.toml"
    adopt.write_text(plain.read_text() + '[adopt]\nrest_api_id = "a1b2c3d4e5"\n')
    monkeypatch.setenv("KMSKG_CONFIG", str(adopt))
    synthesized: list[tuple[Path, Path | None]] = []

    def fake_start_synth(tree: Path, outdir: Path, settings: Path | None) -> subprocess.Popen[str]:
        synthesized.append((tree, settings))
        stack = tenant_stack()
        adopted = tomllib.loads(settings.read_text()).get("adopt", {}) if settings else {}
        if adopted:
            stack["import"] = [{"to": "aws_api_gateway_rest_api.api_rest-api_11223344", "id": adopted["rest_api_id"]}]
        write_synth(outdir, {SERVICE_STACK: stack})
        return subprocess.Popen([sys.executable, "-c", ""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    monkeypatch.setattr(synth_diff, "start_synth", fake_start_synth)
    worktrees = _worktrees()
    result = tmp_path / "result"

    status = synth_diff.main(["--base", "HEAD", "--base-config", str(plain), "--result", str(result)])

    markdown = capsys.readouterr().out
    assert (status, result.read_text()) == (1, "changes\n")
    assert [settings for _, settings in synthesized] == [adopt, plain]  # working tree first, then the base
    assert synthesized[0][0] == PROJECT_ROOT and synthesized[1][0] != PROJECT_ROOT
    assert markdown.splitlines()[:3] == [
        "## Synth diff: `HEAD` → `working tree`",
        "",
        f"Settings: base `{plain}` from the working tree, working tree `{adopt}`.",
    ]
    assert section(markdown, "Imports") == [
        "### Imports",
        "The next apply adopts these existing objects (address ← id) instead of creating them:",
        "- `aws_api_gateway_rest_api.api_rest-api_11223344` ← `a1b2c3d4e5`",
    ]
    assert table_rows(markdown) == [f"| `{SERVICE_STACK}` | 0 | 0 | 0 | 0 | 0 |"]
    assert _worktrees() == worktrees


def test_missing_base_config_is_an_error_before_any_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    result = tmp_path / "result"
    status = synth_diff.main(["--base", "HEAD", "--base-config", "config/no-such.toml", "--result", str(result)])
    assert (status, result.read_text()) == (2, "error\n")
    assert "--base-config config/no-such.toml: no such file" in capsys.readouterr().err


def test_base_config_needs_a_base_synth(tmp_path: Path):
    assert synth_diff.main(["--base-dir", str(tmp_path), "--base-config", "config/default.toml"]) == 2


# --- make diff / make plan-local: outcomes CI can read -----------------------------------------------------------

MAKE_VARIABLES = (
    "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "KMSKG_CONFIG", "BASE", "BASE_CONFIG", "BASE_DIR", "HEAD_DIR",
    "FAIL_ON_CHANGES", "DIFF_RESULT", "PLAN_RESULT",
)  # fmt: skip


def run_make(target: str, *variables: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make TARGET VAR=value...` in the project, its dependencies taken as built (`-o`: no pip, no synth)."""
    clean = {name: value for name, value in os.environ.items() if name not in MAKE_VARIABLES}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "-o", "cdktf.out/manifest.json", target, *variables],
        cwd=PROJECT_ROOT,
        env=dict(clean, **(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def synth_dirs(tmp_path: Path) -> dict[str, Path]:
    return {
        "no tenants": write_synth(tmp_path / "no-tenants", {SERVICE_STACK: tenant_stack()}),
        "acme": write_synth(tmp_path / "acme", {SERVICE_STACK: tenant_stack("acme")}),
    }


@pytest.mark.parametrize(
    ("head", "fail_on_changes", "status", "outcome"),
    [
        ("no tenants", "", 0, "no-changes"),
        ("acme", "", 0, "changes"),
        ("acme", "1", 2, "changes"),
        ("missing", "", 2, "error"),
    ],
)
def test_make_diff_tells_no_changes_changes_and_error_apart(
    synth_dirs: dict[str, Path], tmp_path: Path, head: str, fail_on_changes: str, status: int, outcome: str
):
    result = tmp_path / "diff-result"
    head_dir = synth_dirs.get(head, tmp_path / "missing")
    made = run_make(
        "diff",
        f"BASE_DIR={synth_dirs['no tenants']}",
        f"HEAD_DIR={head_dir}",
        f"DIFF_RESULT={result}",
        f"FAIL_ON_CHANGES={fail_on_changes}",
    )
    assert (made.returncode, result.read_text().strip()) == (status, outcome), made.stderr
    if outcome == "error":
        assert "no synthesized stacks" in made.stderr
    else:  # stdout is the Markdown alone, ready for a PR comment
        assert made.stdout.startswith(f"## Synth diff: `{synth_dirs['no tenants']}` → `{head_dir}`\n")
    if outcome == "changes":
        assert f"- `{API_KEYS}`: for_each keys `acme`" in made.stdout


def test_make_diff_reports_a_crash_as_an_error(tmp_path: Path):
    """A tool that dies before writing its outcome (here: exit 1, the CLI's "changes") is an error, not changes."""
    result = tmp_path / "diff-result"
    result.write_text("no-changes\n")  # a previous run's outcome must not survive
    made = run_make("diff", "PY=false", f"DIFF_RESULT={result}")
    assert (made.returncode, result.read_text().strip()) == (2, "error")


@pytest.mark.parametrize(
    ("plan_status", "fail_on_changes", "status", "outcome"),
    [(0, "", 0, "no-changes"), (2, "", 0, "changes"), (2, "1", 2, "changes"), (1, "", 2, "error")],
)
def test_make_plan_local_maps_the_plan_exit_status(
    tmp_path: Path, plan_status: int, fail_on_changes: str, status: int, outcome: str
):
    """`python -m tools.local plan` follows `terraform plan -detailed-exitcode` (0 none, 2 changes, else error);
    a stand-in interpreter exits with each status."""
    fake_python = tmp_path / "python"
    fake_python.write_text(f'#!/bin/sh\n[ "$*" = "-m tools.local plan" ] || exit 99\nexit {plan_status}\n')
    fake_python.chmod(0o755)
    result = tmp_path / "plan-result"
    made = run_make("plan-local", f"PY={fake_python}", f"PLAN_RESULT={result}", f"FAIL_ON_CHANGES={fail_on_changes}")
    assert (made.returncode, result.read_text().strip()) == (status, outcome), made.stderr
