"""Keep `cdktf.out/` in step with what it was synthesized from, so no make target reads a stale synth.

`synth` runs the cdktf CLI and then records the synth's inputs in `cdktf.out/.inputs.json`: the settings file (its
resolved path and content), `KMSKG_CONFIG`, the sources and the lock files, with a hash of what the synth wrote.
`ensure`, run by every target that reads `cdktf.out/`, synthesizes again only when one of them changed (or another
command rewrote `cdktf.out/`), and says which settings file the output is for. Both load the settings first, so a
missing or invalid file stops every target with the synth's own message. Hashing files takes milliseconds: nothing
here imports cdktf.

    python -m tools.synth_inputs synth|ensure -- npx cdktf synth
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from constructs_lib.settings import CONFIG_ENV_VAR, SettingsError, load_settings, settings_file
from tools.paths import PROJECT_ROOT
from tools.synth_output import MANIFEST, STACKS, stack_files

# What `main.py` builds from, besides the settings file: the app, its Lambda sources, and what pins the toolchain.
SOURCES = ("main.py", "cdktf.json", "constructs_lib", "lambda")
LOCKS = ("pyproject.toml", "constraints.txt", "package-lock.json")
OUTDIR = "cdktf.out"
STAMP = ".inputs.json"
SHOWN_CHANGES = 5


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Content hash of every file under `names` (files or folders), by path relative to `root`; caches skipped."""
    found: dict[str, str] = {}
    for name in names:
        top = root / name
        paths = sorted(top.rglob("*")) if top.is_dir() else [top] if top.is_file() else []
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found[path.relative_to(root).as_posix()] = _sha256(path)
    return found


def _outputs(outdir: Path) -> dict[str, str]:
    """Hashes of what a synth writes (the manifest and each stack's JSON): a synth by another command changes them."""
    paths = [outdir / MANIFEST, *stack_files(outdir / STACKS)]
    return {path.relative_to(outdir).as_posix(): _sha256(path) for path in paths if path.is_file()}


def _shown(path: str, root: Path) -> str:
    """`path` relative to the project when inside it, as users name it."""
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path


@dataclass(frozen=True)
class Inputs:
    """Everything a synth's output depends on, as recorded in `cdktf.out/.inputs.json`."""

    config: str
    """The settings file, resolved: naming the default through `KMSKG_CONFIG` is the same input."""
    kmskg_config: str | None
    config_sha256: str
    files: dict[str, str]

    @classmethod
    def read(cls, root: Path) -> Inputs:
        """The inputs as they are now; the settings file must exist (`load_settings` has said so first)."""
        config = settings_file().resolve()
        return cls(str(config), os.environ.get(CONFIG_ENV_VAR) or None, _sha256(config), _files(root, SOURCES + LOCKS))

    def describe(self, root: Path) -> str:
        """`config/prod.toml (KMSKG_CONFIG=config/prod.toml)`: which settings file, and what chose it."""
        origin = f"{CONFIG_ENV_VAR}={self.kmskg_config}" if self.kmskg_config else f"{CONFIG_ENV_VAR} unset"
        return f"{_shown(self.config, root)} ({origin})"

    def changes_since(self, root: Path) -> list[str]:
        """Why `cdktf.out/` does not hold the synth of these inputs; empty when it does."""
        outdir = root / OUTDIR
        try:
            recorded = json.loads((outdir / STAMP).read_text())
            last, outputs = Inputs(**recorded["inputs"]), recorded["outputs"]
        except (OSError, ValueError, KeyError, TypeError):
            return [f"no record of the last `make synth` ({OUTDIR}/{STAMP})"]
        if outputs != _outputs(outdir):
            return [f"{OUTDIR}/ was written by another command since `make synth`"]
        reasons = []
        if last.config != self.config:
            reasons.append(f"the settings file is now {_shown(self.config, root)} (was {_shown(last.config, root)})")
        elif last.config_sha256 != self.config_sha256:
            reasons.append(f"{_shown(self.config, root)} changed")
        names = last.files.keys() | self.files.keys()
        changed = sorted(name for name in names if last.files.get(name) != self.files.get(name))
        if changed:
            more = f" and {len(changed) - SHOWN_CHANGES} more" if len(changed) > SHOWN_CHANGES else ""
            reasons.append(f"{', '.join(changed[:SHOWN_CHANGES])}{more} changed")
        return reasons

    def record(self, root: Path) -> None:
        """Stamp `cdktf.out/` as the synth of these inputs (after a successful synth, with the inputs read before it:
        a file edited during the synth leaves the stamp stale, not wrong)."""
        outdir = root / OUTDIR
        stamp = {"inputs": asdict(self), "outputs": _outputs(outdir)}
        (outdir / STAMP).write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def synthesize(inputs: Inputs, command: list[str], root: Path) -> int:
    """Run the synth `command`; stamp its output only if it succeeds (a failed synth leaves `cdktf.out/` stale)."""
    (root / OUTDIR / STAMP).unlink(missing_ok=True)
    status = subprocess.run(command, cwd=root).returncode
    if status == 0:
        inputs.record(root)
    return status


def main(argv: list[str] | None = None, root: Path = PROJECT_ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.synth_inputs", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["synth", "ensure"], help="synth: always; ensure: only when inputs changed")
    parser.add_argument("command", nargs="+", help="the synth command, after --")
    args = parser.parse_args(argv)
    try:
        load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    inputs = Inputs.read(root)
    changes = inputs.changes_since(root) if args.mode == "ensure" else []
    if args.mode == "ensure" and not changes:
        print(f"{OUTDIR} is up to date for {inputs.describe(root)}")
        return 0
    reasons = f": {'; '.join(changes)}" if changes else ""
    print(f"synth: {inputs.describe(root)}{reasons}", flush=True)
    return synthesize(inputs, args.command, root)


if __name__ == "__main__":
    sys.exit(main())
