"""Compare the synthesized Terraform JSON of the working tree with a base git ref, as Markdown for a PR.

    python -m tools.synth_diff --base origin/main [--head-dir DIR] [--base-dir DIR] [--output FILE]

The working tree is synthesized with `python main.py` (this interpreter, so the current venv) into a
temporary folder; the base ref is checked out with `git worktree add --detach` into another temporary folder,
synthesized the same way (the two synths run side by side) and the worktree is removed afterwards.
`--head-dir` / `--base-dir` use folders that are already synthesized (a `cdktf.out`) instead. Nothing talks to
AWS: this is a pure comparison of `cdk.tf.json` files.

Every stack is compared resource by resource (address `type.name`, data sources `data.type.name`),
ignoring the `//` metadata CDKTF adds, plus its `import` blocks (adopting existing objects), outputs and the
`terraform` / `provider` blocks. The Markdown has a per-stack count table, a `> [!WARNING]` block for what
Terraform will destroy (removed or replaced stateful or client-facing resources, and renamed addresses, with
the `moved` block that keeps them), then per stack `### Added`, `### Removed`, `### Changed` (attribute paths
with `old -> new`), `### Imports`, `### Outputs` and `### Terraform and providers`. Sensitive values (API key values, SSM parameter and secret values,
password/token-like attributes, outputs marked `sensitive`) are shown as `(sensitive)`.

Exit status: 0 no changes, 1 changes, 2 error.

`diff_stacks()` and `render_markdown()` are pure functions; only `main()` runs git and the synths.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SYNTH_TIMEOUT_SECONDS = 300
MAX_VALUE_CHARS = 100
# A removed and an added resource of one type are a rename when their arguments (as flattened leaves, with
# references to other renamed resources rewritten) are at least this share equal, or differ in one leaf only,
# or share the literal value of an identifying argument and are at least half equal.
RENAME_SIMILARITY = 0.75
IDENTITY_ATTRIBUTES = ("name", "function_name", "bucket", "stage_name", "statement_id")

# Types whose destruction loses data or breaks clients: removing or replacing one gets a warning.
CRITICAL_TYPES: dict[str, str] = {
    "aws_api_gateway_api_key": "clients lose the key value they hold",
    "aws_api_gateway_rest_api": "the API gets a new ID, so every client URL changes",
    "aws_api_gateway_usage_plan": "the plan gets a new ID; its key associations and quota counters are lost",
    "aws_cloudwatch_log_group": "its log events are deleted",
    "aws_dynamodb_table": "its items are deleted",
    "aws_kms_key": "the key is scheduled for deletion; data encrypted under it becomes unreadable",
    "aws_lambda_function": "its versions, aliases and event configuration are deleted",
    "aws_s3_bucket": "its objects are lost (or the destroy fails while the bucket is not empty)",
    "aws_secretsmanager_secret": "the secret and its versions are deleted after the recovery window",
    "aws_ssm_parameter": "its value and version history are deleted",
}

# Top-level arguments marked ForceNew by the AWS provider 5.x: changing one destroys and re-creates the
# resource. Types listed with an empty set update every argument in place (e.g. a REST API's name and
# description, every usage-plan setting).
FORCE_NEW: dict[str, frozenset[str]] = {
    "aws_api_gateway_api_key": frozenset({"value"}),
    "aws_api_gateway_rest_api": frozenset(),
    "aws_api_gateway_usage_plan": frozenset(),
    "aws_cloudwatch_log_group": frozenset({"name", "name_prefix", "log_group_class"}),
    "aws_dynamodb_table": frozenset({"name", "hash_key", "range_key", "local_secondary_index"}),
    "aws_kms_key": frozenset(
        {"customer_master_key_spec", "key_usage", "multi_region", "custom_key_store_id", "xks_key_id"}
    ),
    "aws_lambda_function": frozenset({"function_name", "package_type"}),
    "aws_s3_bucket": frozenset({"bucket", "bucket_prefix", "object_lock_enabled"}),
    "aws_secretsmanager_secret": frozenset({"name", "name_prefix"}),
    "aws_ssm_parameter": frozenset({"name"}),
}

# Resources holding secret material: their value-like top-level arguments are masked.
SECRET_HOLDING_TYPES = frozenset({"aws_api_gateway_api_key", "aws_ssm_parameter", "aws_secretsmanager_secret_version"})
_SECRET_HOLDER_ATTRIBUTE = re.compile(
    r"^(?:.*_)?(?:value|secret_string|secret_binary|password|token|key_value)(?:_wo)?$", re.IGNORECASE
)
# Masked wherever they appear (any resource, provider or backend block, at any depth).
_SECRET_ANYWHERE = re.compile(
    r"^(?:.*_)?(?:password|passwd|secret|secret_string|secret_binary|secret_key|access_key|token|private_key"
    r"|key_value|api_key_value)(?:_wo)?$",
    re.IGNORECASE,
)
SENSITIVE = "(sensitive)"
ABSENT = "(absent)"
_METADATA = "//"
_BLOCKS_DIFFED_ELSEWHERE = frozenset({_METADATA, "resource", "data", "output", "import"})
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class DiffError(Exception):
    """A failure worth one line on stderr and exit status 2."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- Report ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeChange:
    """One leaf (or masked subtree) that differs; `old`/`new` are MISSING when absent on that side."""

    path: str
    old: Any
    new: Any
    sensitive: bool = False


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    changes: tuple[AttributeChange, ...]
    replaced_by: tuple[str, ...] = ()  # top-level arguments forcing replacement (known types only)

    @property
    def replaced(self) -> bool:
        return bool(self.replaced_by)


@dataclass(frozen=True)
class Rename:
    """A resource removed and one of the same type added with (nearly) the same arguments."""

    type: str
    old: str
    new: str
    differences: tuple[str, ...] = ()  # argument paths that still differ once references are renamed


@dataclass(frozen=True)
class OutputChange:
    name: str
    changes: tuple[AttributeChange, ...]


@dataclass(frozen=True)
class DiffWarning:
    stack: str
    address: str
    kind: str  # "removed", "replaced" or "renamed"
    message: str
    moved: tuple[str, str] | None = None  # (from, to) for a rename


@dataclass(frozen=True)
class StackDiff:
    name: str
    status: str  # "both", "added" (new stack) or "removed" (stack gone)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[ResourceChange, ...] = ()
    renames: tuple[Rename, ...] = ()
    outputs_added: tuple[str, ...] = ()
    outputs_removed: tuple[str, ...] = ()
    outputs_changed: tuple[OutputChange, ...] = ()
    settings: tuple[AttributeChange, ...] = ()  # `terraform`, `provider` and any other top-level block
    imports_added: tuple[tuple[str, str], ...] = ()  # (address, import id) of `import` blocks
    imports_removed: tuple[tuple[str, str], ...] = ()

    @property
    def output_count(self) -> int:
        return len(self.outputs_added) + len(self.outputs_removed) + len(self.outputs_changed)

    @property
    def has_changes(self) -> bool:
        return self.status != "both" or bool(
            self.added or self.removed or self.changed or self.output_count or self.settings
            or self.imports_added or self.imports_removed
        )


@dataclass(frozen=True)
class Report:
    stacks: tuple[StackDiff, ...]
    warnings: tuple[DiffWarning, ...]

    @property
    def has_changes(self) -> bool:
        return any(stack.has_changes for stack in self.stacks)

    def stack(self, name: str) -> StackDiff:
        return next(stack for stack in self.stacks if stack.name == name)


# --- Comparison -----------------------------------------------------------------------------------------------


def diff_stacks(base: Mapping[str, Mapping[str, Any]], head: Mapping[str, Mapping[str, Any]]) -> Report:
    """Compare two sets of synthesized stacks (stack name -> parsed cdk.tf.json)."""
    stacks: list[StackDiff] = []
    warnings: list[DiffWarning] = []
    for name in sorted(set(base) | set(head)):
        status = "both" if name in base and name in head else ("added" if name in head else "removed")
        stack = _diff_stack(name, status, base.get(name, {}), head.get(name, {}))
        stacks.append(stack)
        warnings.extend(_warnings(stack))
    return Report(tuple(stacks), tuple(warnings))


def _diff_stack(name: str, status: str, base: Mapping[str, Any], head: Mapping[str, Any]) -> StackDiff:
    old, new = _addressed(base), _addressed(head)
    removed = sorted(set(old) - set(new))
    added = sorted(set(new) - set(old))
    renames = _find_renames(old, new, removed, added)
    changed = []
    for address in sorted(set(old) & set(new)):
        rtype = _type_of(address)
        changes = tuple(_diff_value(_strip(old[address]), _strip(new[address]), "", _masker(rtype)))
        if changes:
            top = {_top_level(change.path) for change in changes}
            force_new = frozenset() if address.startswith("data.") else FORCE_NEW.get(rtype, frozenset())
            replaced_by = tuple(sorted(top & force_new))
            changed.append(ResourceChange(address, rtype, changes, replaced_by))

    old_outputs, new_outputs = base.get("output", {}) or {}, head.get("output", {}) or {}
    outputs_changed = []
    for output in sorted(set(old_outputs) & set(new_outputs)):
        before, after = old_outputs[output], new_outputs[output]
        hidden = bool(_is_sensitive_output(before) or _is_sensitive_output(after))
        changes = tuple(_diff_value(before, after, "", _output_masker(hidden)))
        if changes:
            outputs_changed.append(OutputChange(output, changes))

    settings_old = {key: value for key, value in base.items() if key not in _BLOCKS_DIFFED_ELSEWHERE}
    settings_new = {key: value for key, value in head.items() if key not in _BLOCKS_DIFFED_ELSEWHERE}
    settings = tuple(_diff_value(settings_old, settings_new, "", _masker(None)))
    imports_old, imports_new = _imports(base), _imports(head)

    return StackDiff(
        name=name,
        status=status,
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        renames=tuple(renames),
        outputs_added=tuple(sorted(set(new_outputs) - set(old_outputs))),
        outputs_removed=tuple(sorted(set(old_outputs) - set(new_outputs))),
        outputs_changed=tuple(outputs_changed),
        settings=settings,
        imports_added=tuple(sorted(imports_new - imports_old)),
        imports_removed=tuple(sorted(imports_old - imports_new)),
    )


def _imports(stack: Mapping[str, Any]) -> set[tuple[str, str]]:
    """`(address, id)` of every `import` block (Terraform >= 1.5: adopt an existing object at that address)."""
    return {(block["to"], str(block["id"])) for block in stack.get("import") or []}


def _addressed(stack: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every resource and data source by Terraform address."""
    found: dict[str, dict[str, Any]] = {}
    for prefix, block in (("", "resource"), ("data.", "data")):
        for rtype, by_name in (stack.get(block) or {}).items():
            for logical_name, body in (by_name or {}).items():
                found[f"{prefix}{rtype}.{logical_name}"] = body
    return found


def _type_of(address: str) -> str:
    return address.removeprefix("data.").split(".", 1)[0]


def _strip(body: Any) -> Any:
    """Resource arguments without CDKTF's `//` metadata (construct path, unique id)."""
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key != _METADATA}
    return body


def _top_level(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _masker(rtype: str | None):
    """A predicate on (top-level argument, key) telling whether a subtree is secret."""

    def is_secret(top: str, key: str) -> bool:
        if _SECRET_ANYWHERE.match(key):
            return True
        return rtype in SECRET_HOLDING_TYPES and key == top and bool(_SECRET_HOLDER_ATTRIBUTE.match(key))

    return is_secret


def _output_masker(hidden: bool):
    def is_secret(top: str, key: str) -> bool:
        return (hidden and key == top == "value") or bool(_SECRET_ANYWHERE.match(key))

    return is_secret


def _is_sensitive_output(output: Any) -> bool:
    return isinstance(output, dict) and output.get("sensitive") is True


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    part = key if _PLAIN_KEY.match(key) else f"[{json.dumps(key)}]"
    if not path:
        return part
    return f"{path}{part}" if part.startswith("[") else f"{path}.{part}"


def _diff_value(old: Any, new: Any, path: str, is_secret, top: str = "") -> Iterator[AttributeChange]:
    """Leaf-level differences; a secret subtree is compared whole and reported once, masked."""
    if old == new and type(old) is type(new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            child_top = top or key
            child = _join(path, key)
            before, after = old.get(key, MISSING), new.get(key, MISSING)
            if is_secret(child_top, key):
                if before != after:
                    yield AttributeChange(child, before, after, sensitive=True)
                continue
            if before is MISSING or after is MISSING:
                before, after = _redact(before, is_secret, child_top), _redact(after, is_secret, child_top)
                yield AttributeChange(child, before, after)
            else:
                yield from _diff_value(before, after, child, is_secret, child_top)
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else MISSING
            after = new[index] if index < len(new) else MISSING
            child = _join(path, index)
            if before is MISSING or after is MISSING:
                yield AttributeChange(child, _redact(before, is_secret, top), _redact(after, is_secret, top))
            else:
                yield from _diff_value(before, after, child, is_secret, top)
        return
    yield AttributeChange(path, _redact(old, is_secret, top), _redact(new, is_secret, top))


def _redact(value: Any, is_secret, top: str) -> Any:
    """`value` with every secret subtree replaced by "(sensitive)", for values shown whole (an added block)."""
    if isinstance(value, dict):
        return {
            key: SENSITIVE if is_secret(top or key, key) else _redact(child, is_secret, top or key)
            for key, child in value.items()
        }
    if isinstance(value, list):
        return [_redact(child, is_secret, top) for child in value]
    return value


def _leaves(value: Any, path: str = "") -> dict[str, str]:
    """Flattened JSON leaves (empty containers count as leaves), rendered for comparison."""
    if isinstance(value, dict) and value:
        out: dict[str, str] = {}
        for key, child in value.items():
            out.update(_leaves(child, _join(path, key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, child in enumerate(value):
            out.update(_leaves(child, _join(path, index)))
        return out
    return {path: json.dumps(value, sort_keys=True)}


def _rename_references(leaves: dict[str, str], renames: Mapping[str, str]) -> dict[str, str]:
    if not renames:
        return leaves
    pattern = re.compile(
        r"(?<![\w.-])(" + "|".join(re.escape(old) for old in sorted(renames, key=len, reverse=True)) + r")(?![\w-])"
    )
    return {path: pattern.sub(lambda match: renames[match.group(1)], text) for path, text in leaves.items()}


def _refers(path: str, rendered: str | None) -> bool:
    """Whether a leaf refers to another object (a `${...}` expression or a `depends_on` entry)."""
    return rendered is not None and ("${" in rendered or _top_level(path) == "depends_on")


def _find_renames(
    old: Mapping[str, Any], new: Mapping[str, Any], removed: list[str], added: list[str]
) -> list[Rename]:
    """Pair removed and added addresses of one type whose arguments are equal or nearly so (see
    RENAME_SIMILARITY); pairs sharing an identifying literal (a `name`...) are preferred, then the most similar.

    References to other renamed resources are rewritten first (a renamed API key changes its usage-plan key's
    `key_id` reference too), so pairs are found in rounds until no new pair appears.
    """
    renames: dict[str, str] = {}
    found: list[Rename] = []
    while True:
        candidates = []
        for before in removed:
            if before in renames or before.startswith("data."):
                continue
            for after in added:
                if after in renames.values() or _type_of(after) != _type_of(before):
                    continue
                mapping = dict(renames, **{before: after})
                old_leaves = _rename_references(_leaves(_strip(old[before])), mapping)
                new_leaves = _leaves(_strip(new[after]))
                paths = set(old_leaves) | set(new_leaves)
                different = sorted(path for path in paths if old_leaves.get(path) != new_leaves.get(path))
                if any(_refers(path, side.get(path)) for path in different for side in (old_leaves, new_leaves)):
                    continue  # a reference to another object (that is not itself renamed): a different resource
                score = 1 - len(different) / len(paths) if paths else 1.0
                same_identity = any(
                    key in old_leaves and old_leaves[key] == new_leaves.get(key) and "${" not in old_leaves[key]
                    for key in IDENTITY_ATTRIBUTES
                )
                nearly = score >= RENAME_SIMILARITY or (len(different) == 1 and len(paths) >= 3)
                if nearly or (same_identity and score >= 0.5):
                    candidates.append((not same_identity, -score, before, after, tuple(different)))
        if not candidates:
            break
        new_pairs = 0
        for _, _, before, after, different in sorted(candidates):
            if before in renames or after in renames.values():
                continue
            renames[before] = after
            found.append(Rename(_type_of(before), before, after, different))
            new_pairs += 1
        if not new_pairs:
            break
    return sorted(found, key=lambda rename: rename.old)


def _warnings(stack: StackDiff) -> Iterator[DiffWarning]:
    renamed_from = {rename.old for rename in stack.renames}
    for rename in stack.renames:
        consequence = CRITICAL_TYPES.get(rename.type)
        message = (
            f"`{rename.old}` is renamed to `{rename.new}`: Terraform plans destroy + create, not a rename"
            + (f" ({consequence})" if consequence else "")
            + "."
        )
        if rename.differences:
            message += " The arguments also differ in " + ", ".join(f"`{path}`" for path in rename.differences) + "."
        yield DiffWarning(stack.name, rename.new, "renamed", message, moved=(rename.old, rename.new))
    for address in stack.removed:
        rtype = _type_of(address)
        if address in renamed_from or address.startswith("data.") or rtype not in CRITICAL_TYPES:
            continue
        yield DiffWarning(stack.name, address, "removed", f"`{address}` is destroyed: {CRITICAL_TYPES[rtype]}.")
    for change in stack.changed:
        if change.replaced and change.type in CRITICAL_TYPES:
            forced = ", ".join(f"`{name}`" for name in change.replaced_by)
            yield DiffWarning(
                stack.name,
                change.address,
                "replaced",
                f"`{change.address}` is replaced (destroyed and re-created) because {forced} changed: "
                f"{CRITICAL_TYPES[change.type]}.",
            )


# --- Markdown -------------------------------------------------------------------------------------------------


def code(text: str) -> str:
    """Inline code that survives backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _render_pair(change: AttributeChange) -> str:
    if change.sensitive:
        old = ABSENT if change.old is MISSING else SENSITIVE
        new = ABSENT if change.new is MISSING else SENSITIVE
        return f"{old} -> {new}"
    old_text = None if change.old is MISSING else json.dumps(change.old, sort_keys=True)
    new_text = None if change.new is MISSING else json.dumps(change.new, sort_keys=True)
    start = 0
    if old_text is not None and new_text is not None:
        # Long values: show both from a little before the first difference, so the change is visible.
        common = len(os.path.commonprefix([old_text, new_text]))
        longest = max(len(old_text), len(new_text))
        if longest > MAX_VALUE_CHARS and common > MAX_VALUE_CHARS // 3:
            start = common - MAX_VALUE_CHARS // 3
    return f"{_clip(old_text, start)} -> {_clip(new_text, start)}"


def _clip(text: str | None, start: int) -> str:
    if text is None:
        return ABSENT
    head = "…" if start > 0 else ""
    body = text[start:]
    tail = ""
    if len(body) > MAX_VALUE_CHARS:
        body, tail = body[:MAX_VALUE_CHARS], "…"
    return code(f"{head}{body}{tail}")


def _change_lines(changes: tuple[AttributeChange, ...], indent: str) -> list[str]:
    return [f"{indent}- {code(change.path)}: {_render_pair(change)}" for change in changes]


def render_markdown(report: Report, base_label: str = "base", head_label: str = "head") -> str:
    lines = [f"## Synth diff: {code(base_label)} → {code(head_label)}", ""]
    if not report.has_changes:
        names = ", ".join(code(stack.name) for stack in report.stacks) or "none"
        lines += ["No changes.", "", f"Stacks compared: {names}.", ""]
        return "\n".join(lines)

    lines += [
        "| Stack | Added | Removed | Changed | Outputs | Terraform/providers |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stack in report.stacks:
        label = code(stack.name) + {"both": "", "added": " (new stack)", "removed": " (stack removed)"}[stack.status]
        lines.append(
            f"| {label} | {len(stack.added)} | {len(stack.removed)} | {len(stack.changed)} "
            f"| {stack.output_count} | {len(stack.settings)} |"
        )
    lines.append("")

    if report.warnings:
        lines += ["> [!WARNING]", "> **Terraform will destroy resources in this change.**"]
        for warning in report.warnings:
            lines += [">", f"> **{code(warning.stack)}**: {warning.message}"]
            if warning.moved:
                source, target = warning.moved
                lines += [
                    "> Keep the existing object by adding a `moved` block to the stack (in CDKTF: "
                    f"`.move_from_id({json.dumps(source)})` on the new resource, or keep the old logical ID "
                    f"with `.override_logical_id({json.dumps(source.split('.', 1)[1])})`):",
                    ">",
                    "> ```hcl",
                    "> moved {",
                    f">   from = {source}",
                    f">   to   = {target}",
                    "> }",
                    "> ```",
                ]
        lines.append("")

    for stack in report.stacks:
        if not stack.has_changes:
            continue
        lines += [f"## Stack {code(stack.name)}", ""]
        renamed_to = {rename.old: rename.new for rename in stack.renames}
        renamed_from = {rename.new: rename.old for rename in stack.renames}
        if stack.added:
            lines.append("### Added")
            for address in stack.added:
                note = f" (renamed from {code(renamed_from[address])})" if address in renamed_from else ""
                lines.append(f"- {code(address)}{note}")
            lines.append("")
        if stack.removed:
            lines.append("### Removed")
            for address in stack.removed:
                note = f" (renamed to {code(renamed_to[address])})" if address in renamed_to else ""
                lines.append(f"- {code(address)}{note}")
            lines.append("")
        if stack.changed:
            lines.append("### Changed")
            for change in stack.changed:
                forced = ", ".join(code(name) for name in change.replaced_by)
                note = f" **replaced** (forced by {forced})" if change.replaced else ""
                lines.append(f"- {code(change.address)}{note}")
                lines += _change_lines(change.changes, "  ")
            lines.append("")
        if stack.imports_added or stack.imports_removed:
            lines.append("### Imports")
            if stack.imports_added:
                lines.append("The next apply adopts these existing objects (address ← id) instead of creating them:")
            lines += [f"- {code(address)} ← {code(import_id)}" for address, import_id in stack.imports_added]
            lines += [
                f"- no longer imported: {code(address)} ← {code(import_id)} (a no-op once the object is in state)"
                for address, import_id in stack.imports_removed
            ]
            lines.append("")
        if stack.output_count:
            lines.append("### Outputs")
            lines += [f"- Added {code(name)}" for name in stack.outputs_added]
            lines += [f"- Removed {code(name)}" for name in stack.outputs_removed]
            for output in stack.outputs_changed:
                lines.append(f"- Changed {code(output.name)}")
                lines += _change_lines(output.changes, "  ")
            lines.append("")
        if stack.settings:
            lines.append("### Terraform and providers")
            lines += _change_lines(stack.settings, "")
            lines.append("")
    return "\n".join(lines)


# --- Synthesis ------------------------------------------------------------------------------------------------


def load_stacks(synth_dir: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> cdk.tf.json of one synth output folder (from its manifest, else `stacks/*/`)."""
    manifest = synth_dir / "manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text())["stacks"]
        paths = {name: synth_dir / entry["synthesizedStackPath"] for name, entry in entries.items()}
    else:
        paths = {path.parent.name: path for path in sorted(synth_dir.glob("stacks/*/cdk.tf.json"))}
    if not paths:
        raise DiffError(f"{synth_dir}: no synthesized stacks (no manifest.json or stacks/*/cdk.tf.json)")
    try:
        return {name: json.loads(path.read_text()) for name, path in paths.items()}
    except (OSError, ValueError) as error:
        raise DiffError(f"{synth_dir}: cannot read a stack: {error}") from error


def start_synth(tree: Path, outdir: Path) -> subprocess.Popen[str]:
    """`python main.py` of `tree` with this interpreter, writing to `outdir`."""
    env = dict(os.environ, CDKTF_OUTDIR=str(outdir), JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20")
    return subprocess.Popen(
        [sys.executable, "main.py"], cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_synth(process: subprocess.Popen[str], label: str) -> None:
    try:
        _, stderr = process.communicate(timeout=SYNTH_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise DiffError(f"synth of {label} timed out after {SYNTH_TIMEOUT_SECONDS} s") from None
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        raise DiffError(f"synth of {label} failed (exit {process.returncode}):\n{tail}")


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise DiffError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@contextmanager
def base_worktree(ref: str, parent: Path) -> Iterator[Path]:
    """A detached worktree of `ref`, removed on exit."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except DiffError:
        raise DiffError(f"{ref!r} is not a commit in {PROJECT_ROOT}") from None
    path = parent / "base-tree"
    _git("worktree", "add", "--detach", str(path), commit)
    try:
        yield path
    finally:
        try:
            _git("worktree", "remove", "--force", str(path))
        except DiffError:
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=PROJECT_ROOT, capture_output=True)


def _synthesized(args: argparse.Namespace, tmp: Path) -> tuple[dict, dict]:
    head_process = None
    if args.head_dir is None:
        head_process = start_synth(PROJECT_ROOT, tmp / "head")
    try:
        if args.base_dir is None:
            with base_worktree(args.base, tmp) as tree:
                base_process = start_synth(tree, tmp / "base")
                finish_synth(base_process, f"base {args.base}")
        if head_process is not None:
            finish_synth(head_process, "the working tree")
            head_process = None
    finally:
        if head_process is not None:
            head_process.kill()
            head_process.communicate()
    base = load_stacks(args.base_dir or tmp / "base")
    head = load_stacks(args.head_dir or tmp / "head")
    return base, head


# --- CLI ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.synth_diff",
        description="Markdown diff of the synthesized stacks of a base git ref and the working tree.",
        epilog="Exit status: 0 no changes, 1 changes, 2 error.",
    )
    parser.add_argument("--base", help="git ref to compare against (synthesized in a temporary worktree)")
    parser.add_argument("--base-dir", type=Path, help="already synthesized base output folder (skips --base synth)")
    parser.add_argument("--head-dir", type=Path, help="already synthesized head output folder (default: synth now)")
    parser.add_argument("--output", type=Path, help="also write the Markdown to this file")
    args = parser.parse_args(argv)
    if args.base is None and args.base_dir is None:
        parser.error("give --base REF or --base-dir DIR")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 2
    try:
        with tempfile.TemporaryDirectory(prefix="synth-diff-") as tmp:
            base, head = _synthesized(args, Path(tmp))
        report = diff_stacks(base, head)
        markdown = render_markdown(
            report,
            base_label=args.base or str(args.base_dir),
            head_label=str(args.head_dir) if args.head_dir else "working tree",
        )
        if args.output:
            args.output.write_text(markdown)
    except DiffError as error:
        print(f"synth_diff: {error}", file=sys.stderr)
        return 2
    except Exception:  # exit 1 means "changes", so a crash must not exit 1
        traceback.print_exc()
        return 2
    sys.stdout.write(markdown)
    return 1 if report.has_changes else 0


if __name__ == "__main__":
    sys.exit(main())
