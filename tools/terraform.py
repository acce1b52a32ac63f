"""Run Terraform offline through a filesystem provider mirror, with a CLI config we write ourselves.

The registry is not reachable on our build machines, and the image's global `TF_CLI_CONFIG_FILE` points
at a file that does not exist, so every Terraform call goes through `terraform_env`, which writes and
names our own CLI config. The mirror folder comes from `$KMSKG_PROVIDER_MIRROR`, else the first of the
usual plugin folders holding `hashicorp/aws`. Missing Terraform or mirror raise `ToolError`: they fail
loudly, never skip.

`npx cdktf diff|deploy|destroy` runs Terraform itself, so it gets the same through its environment:

    eval "$(.venv/bin/python -m tools.terraform env)"    # against AWS; the emulator's: `python -m tools.local env`
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from tools.paths import PROJECT_ROOT

MIRROR_ENV_VAR = "KMSKG_PROVIDER_MIRROR"
CLI_CONFIG = PROJECT_ROOT / ".build" / "terraform.rc"
_CANDIDATE_MIRRORS = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
_AWS = Path("registry.terraform.io") / "hashicorp" / "aws"


class ToolError(RuntimeError):
    """A tool the project needs is missing or unusable; the message says what to do."""


def terraform_binary() -> str:
    path = shutil.which("terraform")
    if not path:
        raise ToolError(
            "terraform not found on PATH: install Terraform >= 1.10 (the S3 backend's use_lockfile needs it)"
        )
    return path


def provider_mirror() -> Path:
    """The mirror folder (holding `registry.terraform.io/hashicorp/aws/<version>/<os_arch>/`)."""
    configured = os.environ.get(MIRROR_ENV_VAR)
    if configured:
        mirror = Path(configured).expanduser()
        if not (mirror / _AWS).is_dir():
            raise ToolError(f"{MIRROR_ENV_VAR}={configured}: no {_AWS} provider in that folder")
        return mirror
    for candidate in _CANDIDATE_MIRRORS:
        mirror = Path(candidate).expanduser()
        if (mirror / _AWS).is_dir():
            return mirror
    raise ToolError(
        f"no Terraform provider mirror with {_AWS} found in {', '.join(_CANDIDATE_MIRRORS)}: "
        f"set {MIRROR_ENV_VAR} to a filesystem mirror folder (see README)"
    )


def write_cli_config(path: Path = CLI_CONFIG) -> Path:
    """Write a CLI config that installs providers only from the mirror (no registry, no network).

    No `plugin_cache_dir`: from an unpacked mirror `init` links each stack folder straight to the 700 MB provider,
    and nothing is shared to rewrite. A cache was: every `init` of a folder without a lock file replaced the cache's
    link, and a parallel `terraform apply` linked through it failed with "Required plugins are not installed".
    The file is replaced atomically, so a Terraform starting beside the first writer never reads it half-written.
    """
    mirror = provider_mirror()
    text = (
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        "}\n"
    )
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(text)
        partial.replace(path)
    return path


def terraform_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Process environment for Terraform: our CLI config, no prompts, no checkpoint calls."""
    env = dict(os.environ)
    env.update(
        TF_CLI_CONFIG_FILE=str(write_cli_config()),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    env.update(extra or {})
    return env


def cdktf_env() -> dict[str, str]:
    """The variables `npx cdktf diff|deploy|destroy` needs offline: our CLI config, no checkpoint calls, no
    `terraform providers lock` after init (`CDKTF_SKIP_PROVIDER_LOCK`: it asks the registry for every platform), and
    none of cdktf's plugin cache (`CDKTF_DISABLE_PLUGIN_CACHE_ENV`). cdktf points Terraform at
    `~/.terraform.d/plugin-cache` otherwise: the shared link `write_cli_config` avoids, here shared by every checkout
    of the user; two `npx cdktf deploy` runs beside each other, one with another mirror, failed on it with "Required
    plugins are not installed"."""
    return {
        "TF_CLI_CONFIG_FILE": str(write_cli_config()),
        "CHECKPOINT_DISABLE": "1",
        "CDKTF_SKIP_PROVIDER_LOCK": "true",
        "CDKTF_DISABLE_PLUGIN_CACHE_ENV": "true",
    }


def shell_exports(variables: Mapping[str, str], unset: Iterable[str] = ()) -> str:
    """POSIX shell lines setting `variables` (and unsetting `unset`), for `eval "$(...)"`."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    names = " ".join(unset)
    return "\n".join(lines + ([f"unset {names}"] if names else []))


def terraform(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `terraform <args>` in `cwd`; raise `ToolError` with its output on failure when `check`."""
    result = subprocess.run(
        [terraform_binary(), *args],
        cwd=cwd,
        env=env or terraform_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise ToolError(
            f"terraform {' '.join(args)} failed in {cwd} (exit {result.returncode}):\n{result.stderr}{result.stdout}"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.terraform", description="Terraform and cdktf, offline.")
    parser.add_argument("command", choices=["env"], help="print the exports `npx cdktf` needs against AWS")
    parser.parse_args(argv)
    try:
        print(shell_exports(cdktf_env()))
    except ToolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
