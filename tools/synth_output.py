"""Read a synth output folder (`cdktf.out/`): its manifest, its stacks, and their resources by address.

The one reader of `npx cdktf synth`'s output, for every tool (`diagram`, `synth_diff`, `addresses`, `scan`, `local`)
and `tests/support`. A folder's stacks are the ones its `manifest.json` lists (each at its `synthesizedStackPath`,
else `stacks/<name>/cdk.tf.json`); a folder without a manifest (a hand-made fixture, a copied `stacks/` tree) has the
stacks of its `stacks/*/cdk.tf.json`. Stacks come sorted by name. Errors are `SynthOutputError`s, which each tool
words its own way.

Nothing here imports cdktf: reading a synth takes milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
STACKS = "stacks"
STACK_FILE = "cdk.tf.json"
METADATA = "//"  # CDKTF's metadata key in a resource body (construct path, unique id)


class SynthOutputError(Exception):
    """A synth output folder cannot be read."""


class MissingManifest(SynthOutputError):
    """The folder has no `manifest.json`, and the caller needs one."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} not found")
        self.path = path


class NoStacks(SynthOutputError):
    """The folder holds no synthesized stack at all."""

    def __init__(self, synth_dir: Path) -> None:
        super().__init__(f"{synth_dir}: no synthesized stacks (no {MANIFEST} or {STACKS}/*/{STACK_FILE})")
        self.synth_dir = synth_dir


class UnreadableStack(SynthOutputError):
    """The manifest or a stack's JSON cannot be read or parsed (`error` says why)."""

    def __init__(self, path: Path, error: Exception) -> None:
        super().__init__(f"cannot read {path}: {error}")
        self.path = path
        self.error = error


@dataclass(frozen=True)
class Resource:
    """One resource (or, with `data`, data source) of a synthesized stack."""

    stack: str
    rtype: str
    name: str
    path: str
    """Its construct path (`kms-key-generator/api/stage`), from CDKTF's metadata; "" when it has none."""
    body: Mapping[str, Any]
    data: bool = False

    @property
    def address(self) -> str:
        """The Terraform address: `type.name`, or `data.type.name` for a data source."""
        return ("data." if self.data else "") + f"{self.rtype}.{self.name}"

    @property
    def key(self) -> str:
        """Unique across stacks: `<stack>:<address>`."""
        return f"{self.stack}:{self.address}"


def construct_path(body: Mapping[str, Any]) -> str:
    """The construct path CDKTF records in a resource body, or "" when there is none."""
    metadata = body.get(METADATA) if isinstance(body, Mapping) else None
    return (metadata or {}).get("metadata", {}).get("path") or ""


def resources_of(stack: str, config: Mapping[str, Any], *, data_sources: bool = False) -> list[Resource]:
    """Every resource of a stack's `cdk.tf.json` (and its data sources, after them, with `data_sources`), sorted by
    type and name."""
    blocks = (("resource", False), ("data", True)) if data_sources else (("resource", False),)
    found = []
    for block, data in blocks:
        for rtype, by_name in sorted((config.get(block) or {}).items()):
            for name, body in sorted((by_name or {}).items()):
                found.append(Resource(stack, rtype, name, construct_path(body), body, data))
    return found


def resources_by_address(stack: str, config: Mapping[str, Any], *, data_sources: bool = False) -> dict[str, Resource]:
    """`{address: Resource}` of a stack's `cdk.tf.json`, as `resources_of` lists them."""
    return {resource.address: resource for resource in resources_of(stack, config, data_sources=data_sources)}


def backend_type(config: Mapping[str, Any]) -> str | None:
    """The stack's state backend (`local`, `s3`, ...); None without a `backend` block (an HCP Terraform `cloud`
    block instead)."""
    backends = (config.get("terraform") or {}).get("backend")
    if not backends:
        return None
    (backend,) = backends
    return backend


def backend_block(config: Mapping[str, Any], backend: str) -> Mapping[str, Any] | None:
    """The settings of the stack's `backend` block of that type (`s3`: bucket, key, ...); None when it has none."""
    return ((config.get("terraform") or {}).get("backend") or {}).get(backend)


def stack_files(stacks_dir: Path) -> list[Path]:
    """Every `<stacks_dir>/*/cdk.tf.json`, sorted (`stacks_dir`: a synth's `stacks/` folder)."""
    return sorted(Path(stacks_dir).glob(f"*/{STACK_FILE}"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UnreadableStack(path, error) from error


def stack_paths(synth_dir: Path, *, require_manifest: bool = False) -> dict[str, Path]:
    """`{stack name: its cdk.tf.json}`, sorted by name: the manifest's stacks, else `stacks/*/` (with
    `require_manifest`, a missing manifest raises `MissingManifest` instead). Possibly empty."""
    synth_dir = Path(synth_dir)
    manifest = synth_dir / MANIFEST
    if manifest.is_file():
        try:
            entries = _read_json(manifest)["stacks"]
            paths = {
                name: synth_dir / ((entry or {}).get("synthesizedStackPath") or f"{STACKS}/{name}/{STACK_FILE}")
                for name, entry in entries.items()
            }
        except (KeyError, TypeError, AttributeError) as error:
            raise UnreadableStack(manifest, ValueError(f"not a cdktf manifest ({error!r})")) from error
        return dict(sorted(paths.items()))
    if require_manifest:
        raise MissingManifest(manifest)
    return {path.parent.name: path for path in stack_files(synth_dir / STACKS)}


def read_stack(path: Path) -> dict[str, Any]:
    """One `cdk.tf.json`, parsed; `UnreadableStack` when it cannot be read or is not JSON."""
    return _read_json(Path(path))


def stack_configs(synth_dir: Path, *, require_manifest: bool = False) -> dict[str, dict[str, Any]]:
    """`{stack name: parsed cdk.tf.json}` of a synth output folder, sorted by name; `NoStacks` when it holds none."""
    paths = stack_paths(synth_dir, require_manifest=require_manifest)
    if not paths:
        raise NoStacks(Path(synth_dir))
    return {name: read_stack(path) for name, path in paths.items()}
