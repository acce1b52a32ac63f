"""Compare the synthesized Terraform JSON of the working tree with a base git ref, as Markdown for a PR.

    python -m tools.synth_diff --base origin/main [--base-config FILE] [--head-dir DIR] [--base-dir DIR]
                               [--output FILE] [--result FILE]

The working tree is synthesized with `python main.py` (this interpreter, so the current venv) into a
temporary folder; the base ref is checked out with `git worktree add --detach` into another temporary folder,
synthesized the same way (the two synths run side by side) and the worktree is removed afterwards.
`--head-dir` / `--base-dir` use folders that are already synthesized (a `cdktf.out`) instead. Nothing talks to
AWS: this is a pure comparison of `cdk.tf.json` files.

Settings: the working tree reads `$KMSKG_CONFIG` (default `config/default.toml`). The base reads
`--base-config` when given, a path relative to the working tree (so it may be a file the base revision does not
have: reviewing an `[adopt]` section against the same settings without it shows exactly the imports). Otherwise
the base reads the same settings file as the base revision has it, so a code change is compared under one
environment's settings; a file the base revision lacks (a new environment) falls back to the base's default.

Every stack is compared resource by resource (address `type.name`, data sources `data.type.name`),
ignoring the `//` metadata CDKTF adds, plus its `import` blocks (adopting existing objects), outputs and the
`terraform` / `provider` blocks. The Markdown has a per-stack count table, a `> [!WARNING]` block for what
Terraform will destroy (removed or replaced stateful or client-facing resources, instances of them whose
`for_each` key goes, and renamed addresses, with the `moved` block that keeps them), then per stack `### Added`,
`### Removed`, `### Changed` (attribute paths with `old -> new`), `### Imports`, `### Outputs` and
`### Terraform and providers`. A `for_each` resource names its instance keys when added or removed, and the keys
that appear or disappear when it changes (a tenant added to the tenants map), when they can be read from the JSON:
a literal map or set, or a literal `locals` entry; otherwise they are "computed at plan time". Sensitive values
(API key values, SSM parameter and secret values, password/token-like attributes, outputs marked `sensitive`) are
shown as `(sensitive)`.

Exit status: 0 no changes, 1 changes, 2 error. `--result FILE` also writes the outcome as one word
(`no-changes`, `changes`, `error`) once the run ends, so a caller that only learns success or failure (`make`
turns every failing status into its own 2) can still tell them apart; no file means the tool crashed.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constructs_lib.settings import CONFIG_ENV_VAR, DEFAULT_CONFIG, settings_file
from tools import synth_output
from tools.paths import PROJECT_ROOT

SYNTH_TIMEOUT_SECONDS = 300
MAX_VALUE_CHARS = 100
# A for_each over thousands of tenants: list this many instance keys, then count the rest.
MAX_LISTED_KEYS = 50
EXIT_NO_CHANGES, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
RESULT_WORDS = {EXIT_NO_CHANGES: "no-changes", EXIT_CHANGES: "changes", EXIT_ERROR: "error"}
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
_LOCAL_REFERENCE = re.compile(r"local\.([A-Za-z_][A-Za-z0-9_-]*)")


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
    keys_added: tuple[str, ...] = ()  # `for_each` instance keys that appear
    keys_removed: tuple[str, ...] = ()
    keys_computed: bool = False  # the `for_each` changed, but its keys are known only at plan time

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
    # `for_each` instance keys of added and removed addresses (None: computed at plan time).
    instance_keys: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)

    @property
    def output_count(self) -> int:
        return len(self.outputs_added) + len(self.outputs_removed) + len(self.outputs_changed)

    @property
    def has_changes(self) -> bool:
        return self.status != "both" or bool(
            self.added
            or self.removed
            or self.changed
            or self.output_count
            or self.settings
            or self.imports_added
            or self.imports_removed
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
    old_locals, new_locals = base.get("locals") or {}, head.get("locals") or {}
    removed = sorted(set(old) - set(new))
    added = sorted(set(new) - set(old))
    renames = _find_renames(old, new, removed, added)
    instance_keys = {
        address: for_each_keys(body["for_each"], stack_locals)
        for addresses, bodies, stack_locals in ((removed, old, old_locals), (added, new, new_locals))
        for address in addresses
        if "for_each" in (body := bodies[address])
    }
    changed = []
    for address in sorted(set(old) & set(new)):
        rtype = _type_of(address)
        changes = tuple(_diff_value(_strip(old[address]), _strip(new[address]), "", _masker(rtype)))
        # A changed `locals` entry changes a resource's instances without changing the resource itself.
        keys_added, keys_removed, keys_computed = _instance_changes(old[address], new[address], old_locals, new_locals)
        if changes or keys_added or keys_removed or keys_computed:
            top = {_top_level(change.path) for change in changes}
            force_new = frozenset() if address.startswith("data.") else FORCE_NEW.get(rtype, frozenset())
            replaced_by = tuple(sorted(top & force_new))
            changed.append(
                ResourceChange(address, rtype, changes, replaced_by, keys_added, keys_removed, keys_computed)
            )

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
        instance_keys=instance_keys,
    )


def for_each_keys(for_each: Any, stack_locals: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The sorted instance keys of a `for_each` value, or None when only Terraform can tell (computed at plan time).

    Readable here: a literal map (its keys) or list (a set of strings), `${toset([...])}` with a JSON list (what a
    CDKTF list iterator writes), and `${local.NAME}` or `${toset(local.NAME)}` naming a literal `locals` entry.
    """
    value = for_each
    if isinstance(value, str):
        expression = value[2:-1].strip() if value.startswith("${") and value.endswith("}") else ""
        if expression.startswith("toset(") and expression.endswith(")"):
            expression = expression[len("toset(") : -1].strip()
        reference = _LOCAL_REFERENCE.fullmatch(expression)
        if reference:
            value = stack_locals.get(reference.group(1))
        else:
            try:
                value = json.loads(expression)
            except ValueError:
                return None
    if isinstance(value, dict):
        keys = list(value)
    elif isinstance(value, list) and not any(isinstance(item, (dict, list)) for item in value):
        keys = [item if isinstance(item, str) else json.dumps(item) for item in value]
    else:
        return None
    if any("${" in key for key in keys):
        return None
    return tuple(sorted(set(keys)))


def _instance_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], old_locals: Mapping[str, Any], new_locals: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(keys that appear, keys that disappear, whether a changed `for_each` has keys known only at plan time).

    A side without `for_each` counts as no keys: its `for_each` attribute change shows the rest.
    """
    before, after = old.get("for_each", MISSING), new.get("for_each", MISSING)
    if before is MISSING and after is MISSING:
        return (), (), False
    old_keys = () if before is MISSING else for_each_keys(before, old_locals)
    new_keys = () if after is MISSING else for_each_keys(after, new_locals)
    if old_keys is None or new_keys is None:
        return (), (), before != after
    return tuple(sorted(set(new_keys) - set(old_keys))), tuple(sorted(set(old_keys) - set(new_keys))), False


def instance_address(address: str, key: str) -> str:
    """Terraform's address of one `for_each` instance: `type.name["key"]`."""
    return f"{address}[{json.dumps(key)}]"


def _imports(stack: Mapping[str, Any]) -> set[tuple[str, str]]:
    """`(address, id)` of every `import` block (Terraform >= 1.5: adopt an existing object at that address)."""
    return {(block["to"], str(block["id"])) for block in stack.get("import") or []}


def _addressed(stack: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every resource and data source by Terraform address."""
    resources = synth_output.resources_by_address("", stack, data_sources=True)
    return {address: resource.body for address, resource in resources.items()}


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


def _find_renames(old: Mapping[str, Any], new: Mapping[str, Any], removed: list[str], added: list[str]) -> list[Rename]:
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
        consequence = CRITICAL_TYPES.get(change.type)
        if consequence and not change.address.startswith("data."):
            for key in change.keys_removed:  # a tenant taken out of the tenants map: its API key goes
                instance = instance_address(change.address, key)
                yield DiffWarning(stack.name, instance, "removed", f"`{instance}` is destroyed: {consequence}.")
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


def _key_list(keys: tuple[str, ...]) -> str:
    listed = ", ".join(code(key) for key in keys[:MAX_LISTED_KEYS])
    more = len(keys) - MAX_LISTED_KEYS
    return listed + (f" and {more} more" if more > 0 else "")


def _instances_note(keys: tuple[str, ...] | None) -> str:
    if keys is None:
        return ": for_each keys computed at plan time"
    return f": for_each keys {_key_list(keys)}" if keys else ": for_each over no keys (no instances)"


def _instance_lines(change: ResourceChange) -> list[str]:
    lines = [f"  - for_each keys added: {_key_list(change.keys_added)}"] if change.keys_added else []
    if change.keys_removed:
        lines.append(f"  - for_each keys removed: {_key_list(change.keys_removed)}")
    if change.keys_computed:
        lines.append("  - for_each keys computed at plan time")
    return lines


def render_markdown(report: Report, base_label: str = "base", head_label: str = "head", settings: str = "") -> str:
    """The PR comment; `settings` is a line naming the settings files the two synths read, shown under the title."""
    lines = [f"## Synth diff: {code(base_label)} → {code(head_label)}", ""]
    if settings:
        lines += [settings, ""]
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
                if address in stack.instance_keys:
                    note += _instances_note(stack.instance_keys[address])
                lines.append(f"- {code(address)}{note}")
            lines.append("")
        if stack.removed:
            lines.append("### Removed")
            for address in stack.removed:
                note = f" (renamed to {code(renamed_to[address])})" if address in renamed_to else ""
                if address in stack.instance_keys:
                    note += _instances_note(stack.instance_keys[address])
                lines.append(f"- {code(address)}{note}")
            lines.append("")
        if stack.changed:
            lines.append("### Changed")
            for change in stack.changed:
                forced = ", ".join(code(name) for name in change.replaced_by)
                note = f" **replaced** (forced by {forced})" if change.replaced else ""
                lines.append(f"- {code(change.address)}{note}")
                lines += _instance_lines(change)
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
    try:
        return synth_output.stack_configs(synth_dir)
    except synth_output.UnreadableStack as error:
        raise DiffError(f"{synth_dir}: cannot read a stack: {error.error}") from error
    except synth_output.SynthOutputError as error:
        raise DiffError(str(error)) from error


def synth_env(outdir: Path, settings: Path | None) -> dict[str, str]:
    """This environment for a synth into `outdir` reading `settings` (None: the synthesized tree's default)."""
    env = dict(os.environ, CDKTF_OUTDIR=str(outdir))
    env.pop(CONFIG_ENV_VAR, None)
    if settings is not None:
        env[CONFIG_ENV_VAR] = str(settings)
    return env


def start_synth(tree: Path, outdir: Path, settings: Path | None) -> subprocess.Popen[str]:
    """`python main.py` of `tree` with this interpreter, reading `settings`, writing to `outdir`."""
    return subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=tree,
        env=synth_env(outdir, settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _shown(path: Path) -> str:
    """A settings path as the user would type it: relative to the working tree when inside it."""
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def head_settings() -> tuple[Path, str]:
    """The working tree's settings file (a relative `$KMSKG_CONFIG` from the working tree) and its name."""
    path = settings_file(PROJECT_ROOT).resolve()
    return path, code(_shown(path))


def base_settings(tree: Path, ref: str, base_config: Path | None, config_env: str | None) -> tuple[Path | None, str]:
    """The settings file the base synth in `tree` reads (None: the base revision's default) and how to name it.

    `--base-config` wins, resolved in the working tree. Else the working tree's settings file as the base revision
    has it (an absolute path outside the working tree is one file for both sides), or the base's default when the
    base revision lacks that file.
    """
    if base_config is not None:
        path = (PROJECT_ROOT / base_config).resolve()
        return path, f"{code(_shown(path))} from the working tree"
    if not config_env:
        return None, code(_shown(DEFAULT_CONFIG))
    path = (PROJECT_ROOT / config_env).resolve()
    if not path.is_relative_to(PROJECT_ROOT):
        return path, code(str(path))
    relative = path.relative_to(PROJECT_ROOT)
    if (tree / relative).is_file():
        return tree / relative, code(str(relative))
    return None, f"{code(_shown(DEFAULT_CONFIG))} ({code(str(relative))} is not in {code(ref)})"


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


def _synthesized(args: argparse.Namespace, tmp: Path) -> tuple[dict, dict, str]:
    """Both sides' stacks and a Markdown line naming the settings each synthesized side read."""
    if args.base_config is not None and not (PROJECT_ROOT / args.base_config).is_file():
        raise DiffError(f"--base-config {args.base_config}: no such file (a path relative to the working tree)")
    config_env = os.environ.get(CONFIG_ENV_VAR)
    named = []
    head_process = None
    if args.head_dir is None:
        settings, name = head_settings()
        named.append(f"working tree {name}")
        head_process = start_synth(PROJECT_ROOT, tmp / "head", settings)
    try:
        if args.base_dir is None:
            with base_worktree(args.base, tmp) as tree:
                settings, name = base_settings(tree, args.base, args.base_config, config_env)
                named.insert(0, f"base {name}")
                base_process = start_synth(tree, tmp / "base", settings)
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
    return base, head, ("Settings: " + ", ".join(named) + ".") if named else ""


# --- CLI ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.synth_diff",
        description="Markdown diff of the synthesized stacks of a base git ref and the working tree.",
        epilog="Exit status: 0 no changes, 1 changes, 2 error.",
    )
    parser.add_argument("--base", help="git ref to compare against (synthesized in a temporary worktree)")
    parser.add_argument(
        "--base-config",
        type=Path,
        help="settings file of the base synth, relative to the working tree (default: $KMSKG_CONFIG as the base "
        "revision has it, else the base's default)",
    )
    parser.add_argument("--base-dir", type=Path, help="already synthesized base output folder (skips --base synth)")
    parser.add_argument("--head-dir", type=Path, help="already synthesized head output folder (default: synth now)")
    parser.add_argument("--output", type=Path, help="also write the Markdown to this file")
    parser.add_argument("--result", type=Path, help="write the outcome to this file: no-changes, changes or error")
    args = parser.parse_args(argv)
    if args.base is None and args.base_dir is None:
        parser.error("give --base REF or --base-dir DIR")
    if args.base_config is not None and args.base_dir is not None:
        parser.error("--base-config applies to a --base synth, not to an already synthesized --base-dir")
    return args


def _run(args: argparse.Namespace) -> int:
    if args.result:
        args.result.unlink(missing_ok=True)  # a run cut short must not leave the last run's word behind
    with tempfile.TemporaryDirectory(prefix="synth-diff-") as tmp:
        base, head, settings = _synthesized(args, Path(tmp))
    report = diff_stacks(base, head)
    markdown = render_markdown(
        report,
        base_label=str(args.base_dir) if args.base_dir else args.base,
        head_label=str(args.head_dir) if args.head_dir else "working tree",
        settings=settings,
    )
    if args.output:
        args.output.write_text(markdown)
    sys.stdout.write(markdown)
    sys.stdout.flush()
    return EXIT_CHANGES if report.has_changes else EXIT_NO_CHANGES


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exit_:
        return EXIT_NO_CHANGES if exit_.code == 0 else EXIT_ERROR
    try:
        status = _run(args)
    except DiffError as error:
        print(f"synth_diff: {error}", file=sys.stderr)
        status = EXIT_ERROR
    except Exception:  # exit 1 means "changes", so a crash must not exit 1
        traceback.print_exc()
        status = EXIT_ERROR
    if args.result:
        try:
            args.result.write_text(RESULT_WORDS[status] + "\n")
        except OSError as error:
            print(f"synth_diff: cannot write --result: {error}", file=sys.stderr)
            return EXIT_ERROR
    return status


if __name__ == "__main__":
    sys.exit(main())
