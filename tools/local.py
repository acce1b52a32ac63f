"""Deploy, plan and destroy every synthesized stack on this checkout's local emulator (`make *-local`).

The JSON applied is exactly what `make synth` wrote: stack folders are copied byte for byte into
`.local-aws/stacks/` (so local runs never touch the `.terraform` or state of a real deployment), and only
the environment differs: `AWS_ENDPOINT_URL`, dummy credentials, and backend settings given to
`terraform init` with `-backend-config` (the local state path; the S3 backend's endpoints).

A checkout has one emulator, found from its record (`.local-aws/local-aws.pid`: pid and port), never from a guess:
every command uses it, a port asked for (`--port`, `$LOCAL_AWS_PORT`) must be its port, and only when none runs
does `deploy` (or `env`) start one, on that port or 4566.

`npx cdktf diff|deploy|destroy` works against the same emulator and state: `env` prints its environment, with
`CDKTF_OUTPUT=.local-aws/cdktf.out`, so cdktf's synth and `.terraform` folders stay apart from a real deployment's,
and the remote-state stack's local state lands where `deploy` keeps it (`.local-aws/terraform.<stack>.tfstate`).

    python -m tools.local deploy|plan|destroy [--port 4566] [--synth-dir cdktf.out]
    python -m tools.local api-key [--port 4566]    # the deployed API's live key, for `curl -H "x-api-key: $(...)"`
    eval "$(python -m tools.local env)"             # then `npx cdktf deploy kms-key-generator-remote-state`, ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws.__main__ import Emulator, EmulatorError, emulator_health, launch, recorded, shutdown
from tools import synth_output
from tools.paths import PROJECT_ROOT, SYNTH_DIR
from tools.terraform import ToolError, cdktf_env, shell_exports, terraform, terraform_env

DEFAULT_WORKDIR = PROJECT_ROOT / ".local-aws"
# What `python -m tools.request_key --local` reads by default (relative, like its other default).
LOCAL_SERVICE_STACK_DIR = ".local-aws/stacks/kms-key-generator"
LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
PORT_ENV_VAR = "LOCAL_AWS_PORT"
CDKTF_OUTPUT = "cdktf.out"  # cdktf's output folder inside the working folder (`CDKTF_OUTPUT` of `env`)
# What cdktf itself leaves in a stack folder it ran in (its `terraform init` and `plan -out`): never part of a
# synth, so never copied (`.terraform`'s provider links point at the very files the copy's own links do).
CDKTF_RUN_FILES = (".terraform", ".terraform.lock.hcl", "plan", "generated_resources.tf")
INIT_STAMP = Path(".terraform") / "kmskg-init.json"
"""In a working copy: the inputs of its last successful `terraform init` and a digest of what that init wrote
(`LocalTarget.init`)."""
_RESOURCE_COUNTS = re.compile(r"(?:Apply|Destroy) complete! Resources: ([^.]*)\.")
PARAMETER_OUTPUT = "ssm_parameter_name"  # the service stack's output naming the SSM SecureString with its API key
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Variables that would send Terraform to a real account or a profile instead of the emulator.
_REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE")


def emulator_variables(endpoint: str) -> dict[str, str]:
    """What sends Terraform (the provider and the S3 backend alike) to the emulator at `endpoint`."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        # An emulator gap answers 500 forever; fail in seconds instead of the SDK's 25 retries.
        "AWS_MAX_ATTEMPTS": "3",
        **DUMMY_CREDENTIALS,
    }


def emulator_env(endpoint: str) -> dict[str, str]:
    """Terraform's environment for the emulator at `endpoint`: dummy credentials, no profile of the caller's."""
    env = terraform_env(emulator_variables(endpoint))
    for name in _REAL_AWS_VARIABLES:
        env.pop(name, None)
    return env


def emulator_client(endpoint: str, service: str, region: str = "us-east-1", **options: Any) -> Any:
    """A boto3 client for the emulator with dummy credentials.

    The caller's profile, config and credentials files are never read: a real profile must not sign requests
    to the emulator, and a missing one (`AWS_PROFILE=nope`) must not break them.
    """
    import boto3
    import botocore.session

    session = botocore.session.Session(
        session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )
    return boto3.session.Session(botocore_session=session).client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        **options,
    )


def _init_record(workdir: Path, inputs: dict[str, Any]) -> str | None:
    """What `INIT_STAMP` holds after an init with `inputs`: them and a digest of the backend state the init
    wrote; None when the init left no backend state, provider links or lock file."""
    backend_state = workdir / ".terraform" / "terraform.tfstate"
    if not (backend_state.is_file() and (workdir / ".terraform" / "providers").is_dir()):
        return None
    if not (workdir / ".terraform.lock.hcl").is_file():
        return None
    digest = hashlib.sha256(backend_state.read_bytes()).hexdigest()
    return json.dumps({"inputs": inputs, "backend_state": digest}, sort_keys=True)


def local_endpoint(port: int) -> str:
    return f"http://{LOCAL_HOST}:{port}"


def resource_changes(output: str) -> str:
    """Terraform's own count of what an apply or destroy did, e.g. `9 added, 0 changed, 0 destroyed`."""
    found = _RESOURCE_COUNTS.search(output)
    return found.group(1) if found else "no resource count in Terraform's output"


def user_request_url(endpoint: str, rest_api_id: str, stage: str, path: str = "/keys") -> str:
    """Where the emulator serves a deployed stage (AWS's execute-api host does not resolve locally)."""
    return f"{endpoint}/restapis/{rest_api_id}/{stage}/_user_request_{path}"


@dataclass(frozen=True)
class Stack:
    name: str
    backend: str  # "local" (bootstraps state) or "s3" (keeps state in the bootstrapped bucket)
    config: dict[str, Any]


def synthesized_stacks(synth_dir: Path) -> list[Stack]:
    """Stacks in deployment order: local-state stacks (the state bucket) first."""
    stacks = []
    try:
        synthesized = synth_output.stack_paths(synth_dir, require_manifest=True)
        for name, path in synthesized.items():
            config = synth_output.read_stack(path)
            backend = synth_output.backend_type(config)
            if backend is None:  # `state.backend = "hcp"`: a cloud block, which the emulator lacks
                raise ToolError(
                    f'stack {name} keeps its state in HCP Terraform: the local targets need state.backend = "s3"'
                )
            stacks.append(Stack(name, backend, config))
    except synth_output.MissingManifest as error:
        raise ToolError(f"{error.path} not found: run `make synth` first") from None
    except synth_output.SynthOutputError as error:
        raise ToolError(str(error)) from error
    return sorted(stacks, key=lambda stack: stack.backend != "local")


@dataclass(frozen=True)
class LocalTarget:
    """Where and how stacks are applied: an emulator endpoint and a working folder for copies and state."""

    endpoint: str
    synth_dir: Path
    workdir: Path
    variables: tuple[tuple[str, str], ...] = ()
    """Extra environment, e.g. `TF_VAR_tenant_api_key_values` (sensitive inputs never in the JSON)."""
    verbose: bool = False
    """Print each stack's steps as they start, and Terraform's counts: the progress of `make *-local`."""

    def env(self) -> dict[str, str]:
        return emulator_env(self.endpoint) | dict(self.variables)

    def say(self, stack: Stack, step: str) -> None:
        if self.verbose:
            print(f"## {stack.name}: {step}", flush=True)

    def stack_dir(self, stack: Stack) -> Path:
        return self.workdir / "stacks" / stack.name

    def prepare(self, stack: Stack) -> Path:
        """Copy the synthesized files (JSON and assets, unchanged) over the working copy, keeping `.terraform`.

        What cdktf leaves in the synth folder after it ran there (`CDKTF_RUN_FILES`) is not copied.
        """
        source, target = self.synth_dir / "stacks" / stack.name, self.stack_dir(stack)
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            if not old.name.startswith(".terraform"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()

        def cdktf_run_files(folder: str, _: list[str]) -> tuple[str, ...]:
            return CDKTF_RUN_FILES if folder == str(source) else ()

        shutil.copytree(source, target, ignore=cdktf_run_files, dirs_exist_ok=True)
        return target

    def state_file(self, stack: Stack) -> Path:
        """A local-backend stack's state: where its relative `path` puts it when cdktf runs in `CDKTF_OUTPUT`.

        `make *-local` and `npx cdktf` with `env`'s environment so share one state (for S3-backend stacks the
        emulator's bucket is shared anyway), and a real deployment's, in the project root, is never touched.
        """
        relative = stack.config["terraform"]["backend"]["local"]["path"]
        return Path(os.path.normpath(self.workdir / CDKTF_OUTPUT / "stacks" / stack.name / relative))

    def backend_settings(self, stack: Stack) -> Path:
        """The file of settings `backend_config` points an S3-backend stack at the emulator with."""
        return self.workdir / f"{stack.name}.s3.tfbackend"

    def backend_config(self, stack: Stack) -> list[str]:
        """`-backend-config` arguments that point a stack's backend at the emulator."""
        if stack.backend == "local":
            return [f"-backend-config=path={self.state_file(stack)}"]
        settings = self.backend_settings(stack)
        settings.write_text(
            f'endpoints = {{\n  s3       = "{self.endpoint}"\n  dynamodb = "{self.endpoint}"\n'
            f'  sts      = "{self.endpoint}"\n  iam      = "{self.endpoint}"\n}}\n'
            "use_path_style              = true\n"
            "skip_credentials_validation = true\n"
            "skip_requesting_account_id  = true\n"
            "skip_metadata_api_check     = true\n"
        )
        return [f"-backend-config={settings}"]

    def init(self, stack: Stack) -> Path:
        """Refresh the working copy and `terraform init` it, unless nothing an init reads or writes has changed.

        An init reads the stack's `terraform` block (backend, required providers), the backend settings that point it
        at this emulator, Terraform's CLI configuration (the provider mirror) and `TF_WORKSPACE`; it writes
        `.terraform/terraform.tfstate` (the backend as initialized), the provider links and the lock file. After an
        init succeeds, `INIT_STAMP` records the inputs and a digest of what it wrote; while both still match and the
        links and lock file are there, an init would change nothing, and is skipped (it costs ~1 s of CPU before
        every plan and apply). With `TF_DATA_DIR` set, `.terraform` is elsewhere: every call initializes.
        """
        workdir = self.prepare(stack)
        backend, settings = self.backend_config(stack), self.backend_settings(stack)
        env = self.env()
        stamp = workdir / INIT_STAMP
        inputs = {
            "terraform": stack.config.get("terraform"),
            "backend": backend,
            "settings": settings.read_text() if settings.is_file() else None,
            "cli": Path(env["TF_CLI_CONFIG_FILE"]).read_text(),
            "workspace": env.get("TF_WORKSPACE"),
        }
        if not env.get("TF_DATA_DIR") and stamp.is_file() and stamp.read_text() == _init_record(workdir, inputs):
            self.say(stack, "init: up to date")
            return workdir
        self.say(stack, "init")
        stamp.unlink(missing_ok=True)
        terraform("init", "-reconfigure", "-input=false", "-no-color", *backend, cwd=workdir, env=env)
        record = _init_record(workdir, inputs)
        if record is not None:
            stamp.write_text(record)
        return workdir

    def apply(self, stack: Stack) -> subprocess.CompletedProcess[str]:
        """Returns Terraform's run, whose printed output callers may inspect (e.g. for leaked secrets)."""
        workdir = self.init(stack)
        self.say(stack, "apply")
        result = terraform("apply", "-auto-approve", "-input=false", "-no-color", cwd=workdir, env=self.env())
        self.say(stack, f"applied: {resource_changes(result.stdout)}")
        return result

    def plan(self, stack: Stack) -> subprocess.CompletedProcess[str]:
        """`terraform plan -detailed-exitcode`: returncode 0 = no changes, 2 = changes, 1 = error."""
        workdir = self.init(stack)
        self.say(stack, "plan")
        return terraform(
            "plan", "-detailed-exitcode", "-input=false", "-no-color", cwd=workdir, env=self.env(), check=False
        )

    def destroy(self, stack: Stack) -> subprocess.CompletedProcess[str]:
        """`terraform destroy`, once the stack's tables have deletion protection switched off.

        DynamoDB refuses to delete a protected table, and so does the emulator; in AWS an operator switches
        protection off on purpose (README: destroying). Locally the whole deployment is disposable, so it is done
        here, through the emulator's API, like emptying the state bucket.
        """
        workdir = self.init(stack)
        self.unprotect_tables(stack)
        self.say(stack, "destroy")
        return terraform("destroy", "-auto-approve", "-input=false", "-no-color", cwd=workdir, env=self.env())

    def unprotect_tables(self, stack: Stack) -> list[str]:
        """Switch deletion protection off on the stack's protected tables that exist; returns their names."""
        tables = [
            table["name"]
            for table in stack.config.get("resource", {}).get("aws_dynamodb_table", {}).values()
            if table.get("deletion_protection_enabled")
        ]
        if not tables:
            return []
        region = next(iter(stack.config.get("provider", {}).get("aws", [])), {}).get("region", "us-east-1")
        dynamodb = emulator_client(self.endpoint, "dynamodb", region)
        unprotected = []
        for name in tables:
            try:
                dynamodb.update_table(TableName=name, DeletionProtectionEnabled=False)
            except dynamodb.exceptions.ResourceNotFoundException:
                continue  # not deployed (or already gone): nothing to protect
            unprotected.append(name)
        return unprotected

    def outputs(self, stack: Stack) -> dict[str, Any]:
        result = terraform("output", "-json", "-no-color", cwd=self.stack_dir(stack), env=self.env())
        return json.loads(result.stdout)

    def empty_state_bucket(self, stack: Stack) -> None:
        """Delete every object version in the state bucket, so destroying the (non-force) bucket succeeds."""
        bucket = stack.config["terraform"]["backend"]["s3"]["bucket"]
        s3 = emulator_client(self.endpoint, "s3")
        try:
            pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
            for page in pages:
                doomed = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if doomed:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed})
        except s3.exceptions.NoSuchBucket:
            return

    def deploy_all(self) -> list[Stack]:
        stacks = synthesized_stacks(self.synth_dir)
        for stack in stacks:
            self.apply(stack)
        return stacks

    def deployed(self, stack: Stack) -> bool:
        """Whether the stack has state to destroy: a local state file, or a state bucket that exists."""
        if stack.backend == "local":
            return self.state_file(stack).is_file()
        from botocore.exceptions import ClientError

        s3 = emulator_client(self.endpoint, "s3")
        try:
            s3.head_bucket(Bucket=stack.config["terraform"]["backend"]["s3"]["bucket"])
        except ClientError:
            return False
        return True

    def destroy_all(self) -> None:
        """Destroy the service stacks, then the state stack; stacks with nothing deployed are skipped."""
        stacks = synthesized_stacks(self.synth_dir)
        for stack in reversed(stacks):
            if not self.deployed(stack):
                print(f"## {stack.name}: nothing deployed", flush=True)
                continue
            result = self.destroy(stack)
            if stack.backend == "s3":
                self.empty_state_bucket(stack)
            print(f"## {stack.name}: destroyed: {resource_changes(result.stdout)}", flush=True)


@dataclass(frozen=True)
class PortRequest:
    """A port asked for, and by what (`--port` or `$LOCAL_AWS_PORT`), to name it in a refusal."""

    port: int
    source: str


def requested_port(flag: int | None, environ: Mapping[str, str] = os.environ) -> PortRequest | None:
    """`--port`, else a non-empty `$LOCAL_AWS_PORT` (the Makefile drops its own default), else None."""
    if flag is not None:
        return PortRequest(flag, "--port")
    value = environ.get(PORT_ENV_VAR, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ToolError(f"${PORT_ENV_VAR} is not a port number: {value!r}")
    return PortRequest(int(value), PORT_ENV_VAR)


def checkout_emulator(workdir: Path, requested: PortRequest | None) -> Emulator | None:
    """The emulator `workdir` recorded, if it runs (a stale record is removed); a request for another port is
    refused, naming both, rather than served by a second emulator or a guess."""
    running = recorded(workdir)
    if running is not None and requested is not None and requested.port != running.port:
        drop = "unset LOCAL_AWS_PORT" if requested.source == PORT_ENV_VAR else "drop --port"
        raise ToolError(
            f"{requested.source}={requested.port} but this checkout's emulator runs on {running.port} "
            f"(pid {running.pid}); {drop} or run `make destroy-local` first"
        )
    return running


def ensure_emulator(workdir: Path, requested: PortRequest | None) -> tuple[Emulator, bool]:
    """This checkout's emulator: the recorded one (False), else one started on the requested port or 4566 (True)."""
    running = checkout_emulator(workdir, requested)
    if running is not None:
        return running, False
    try:
        return launch(requested.port if requested else DEFAULT_PORT, workdir)
    except EmulatorError as error:
        raise ToolError(str(error)) from None


def emulator_line(emulator: Emulator, started: bool, workdir: Path) -> str:
    how = f"started (log: {workdir / 'local-aws.log'})" if started else "this checkout's, already running"
    return f"## emulator: local_aws on {emulator.endpoint} (pid {emulator.pid}), {how}"


def no_emulator(workdir: Path) -> ToolError:
    return ToolError(f"no emulator of this checkout runs (none recorded in {workdir}): run `make deploy-local` first")


def cdktf_exports(target: LocalTarget) -> str:
    """Shell lines for `eval`: `npx cdktf diff|deploy|destroy` against `target`'s emulator, offline, with cdktf's
    output in the working folder (`CDKTF_OUTPUT`), so state lands where `make *-local` keeps it."""
    variables = cdktf_env() | {"CDKTF_OUTPUT": str(target.workdir / CDKTF_OUTPUT)} | emulator_variables(target.endpoint)
    return shell_exports(variables, unset=_REAL_AWS_VARIABLES)


def emulator_answers(endpoint: str) -> bool:
    """Whether our emulator answers at `endpoint` (asked quietly: `api-key` prints nothing but the key)."""
    from local_aws import HEALTH_PATH

    try:
        with urllib.request.urlopen(endpoint + HEALTH_PATH, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def working_copies(workdir: Path) -> list[Stack]:
    """The stacks as last applied from `workdir` (its copies), whatever `cdktf.out` holds now."""
    stacks = []
    for path in synth_output.stack_files(workdir / synth_output.STACKS):
        try:
            config = synth_output.read_stack(path)
        except synth_output.SynthOutputError as error:
            raise ToolError(str(error)) from error
        backend = synth_output.backend_type(config)
        if backend is None:
            raise ToolError(f"{path}: no backend block: not a copy `make deploy-local` made")
        stacks.append(Stack(path.parent.name, backend, config))
    return stacks


def service_stack(stacks: list[Stack]) -> Stack | None:
    """The stack serving the API: the one whose outputs name the SSM parameter holding its key."""
    return next((stack for stack in stacks if PARAMETER_OUTPUT in stack.config.get("output", {})), None)


def api_key_emulator(workdir: Path, requested: PortRequest | None) -> Emulator | None:
    """Where `api-key` reads: this checkout's emulator; without one, ours answering on an explicit port (a test's or
    a benchmark's private emulator, which `workdir` did not record). Reading a key changes nothing, so it may."""
    running = checkout_emulator(workdir, requested)
    if running is None and requested is not None:
        health = emulator_health(requested.port)
        if health is not None:
            return Emulator(int(health["pid"]), requested.port)
    return running


def live_api_key(workdir: Path, emulator: Emulator | None) -> str:
    """The deployed service's API key, as the emulator's SSM holds it now (it rotates); ToolError if none."""
    from botocore.exceptions import BotoCoreError, ClientError

    stack = service_stack(working_copies(workdir))
    if stack is None or not (workdir / "stacks" / stack.name / ".terraform").is_dir():
        raise ToolError(f"nothing deployed from {workdir}: run `make deploy-local` first")
    if emulator is None:
        raise no_emulator(workdir)
    target = LocalTarget(emulator.endpoint, workdir / CDKTF_OUTPUT, workdir)
    outputs = {name: output["value"] for name, output in target.outputs(stack).items()}
    parameter = outputs.get(PARAMETER_OUTPUT)
    if not parameter:
        raise ToolError(f"stack {stack.name} has no {PARAMETER_OUTPUT} output: run `make deploy-local` first")
    ssm = emulator_client(target.endpoint, "ssm", outputs.get("region") or "us-east-1")
    try:
        return ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    except (BotoCoreError, ClientError) as error:
        message = f"cannot read the API key from SSM parameter {parameter} on {target.endpoint}: {error}"
        raise ToolError(message) from None


def request_commands(target: LocalTarget, stack: Stack, outputs: dict[str, Any]) -> tuple[str, str]:
    """A `curl` line and a `tools.request_key --local` line creating a key through the emulator's API Gateway.

    Both work as printed from the project root. The API key is read when the command runs (`api-key`), so it
    never lands in the deploy output; each call picks fresh aliases, so a pasted line never meets a 409.
    """
    port = urllib.parse.urlsplit(target.endpoint).port or DEFAULT_PORT
    python = shlex.quote(sys.executable)
    account, region = str(outputs.get("account_id") or "123456789012"), str(outputs.get("region") or "us-east-1")
    workdir = [] if target.workdir.resolve() == DEFAULT_WORKDIR.resolve() else ["--workdir", str(target.workdir)]
    api_key = shlex.join(["-m", "tools.local", "api-key", "--port", str(port), *workdir])
    body = {
        "account": account,
        "region": region,
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": f"demo-{secrets.token_hex(4)}",
        "key_description": "demo key",
    }
    url = user_request_url(local_endpoint(port), outputs["rest_api_id"], outputs["stage_name"])
    curl = (
        f"curl -sS -w '\\nHTTP %{{http_code}}\\n' -X POST {shlex.quote(url)} -H 'Content-Type: application/json' "
        f'-H "x-api-key: $({python} {api_key})" -d {shlex.quote(json.dumps(body))}'
    )
    stack_dir = target.stack_dir(stack)
    default_stack_dir = (PROJECT_ROOT / LOCAL_SERVICE_STACK_DIR).resolve()
    where = [] if stack_dir.resolve() == default_stack_dir else ["--stack-dir", str(stack_dir)]
    request_key = shlex.join(
        [
            "-m",
            "tools.request_key",
            "--local",
            "--port",
            str(port),
            *where,
            "--account",
            account,
            "--region",
            region,
            "--alias",
            f"demo-{secrets.token_hex(4)}",
            "--description",
            "demo key",
        ]
    )
    return curl, f"{python} {request_key}"


def _print_outputs(target: LocalTarget, stacks: list[Stack]) -> None:
    """Every stack's outputs (sensitive ones hidden), then commands that create a key through the emulator."""
    commands = None
    for stack in stacks:
        print(f"\n## {stack.name} outputs")
        outputs = target.outputs(stack)
        for name, output in sorted(outputs.items()):
            value = "(sensitive)" if output.get("sensitive") else json.dumps(output["value"])
            print(f"  {name} = {value}")
        if PARAMETER_OUTPUT in outputs and "rest_api_id" in outputs:
            commands = request_commands(target, stack, {name: output["value"] for name, output in outputs.items()})
    if commands:
        curl, request_key = commands
        print(
            "\nCreate a key through the emulator's API Gateway (from the project root; the API key is read from "
            f"the emulator's SSM when the command runs):\n  {curl}\nor with the client, as against AWS:\n"
            f"  {request_key}"
        )
    print(
        "\nAgainst a real deployment, through the API with its key from SSM:\n"
        "  python -m tools.request_key --account <account> --region <region> --alias demo --description 'demo key'"
    )


def _deploy(target: LocalTarget, emulator: Emulator, stacks: list[Stack]) -> None:
    """Apply every stack (progress per stack), print the outputs, and end with Terraform's counts per stack."""
    changes = {stack.name: resource_changes(target.apply(stack).stdout) for stack in stacks}
    _print_outputs(target, stacks)
    print(f"\nDeployed to local_aws on {emulator.endpoint} (pid {emulator.pid}):")
    for name, counts in changes.items():
        print(f"  {name}: {counts}")
    print("The emulator keeps running: `make plan-local`, then `make destroy-local`.")


def _plan(target: LocalTarget) -> int:
    """Plan every stack: 0 = no changes, 2 = changes, 1 = an error (Terraform's output is printed unless 0)."""
    codes = []
    for stack in synthesized_stacks(target.synth_dir):
        result = target.plan(stack)
        print(f"## {stack.name}: " + {0: "no changes", 2: "changes"}.get(result.returncode, "error"), flush=True)
        if result.returncode != 0:
            print(result.stdout + result.stderr)
        codes.append(result.returncode)
    return 1 if 1 in codes else max(codes, default=0)


def _destroy(synth_dir: Path, workdir: Path, emulator: Emulator | None) -> None:
    """Destroy every stack on the recorded emulator and stop it; then drop the local state of what it held."""
    if emulator is None:
        print("## no emulator of this checkout runs: nothing to destroy")
    else:
        print(emulator_line(emulator, False, workdir), flush=True)
        LocalTarget(emulator.endpoint, synth_dir, workdir, verbose=True).destroy_all()
        shutdown(workdir)
        print(f"## emulator: local_aws on {emulator.endpoint} (pid {emulator.pid}) stopped")
    for state in workdir.glob("terraform.*.tfstate*"):  # the emulator kept everything in memory: it is all gone
        state.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["deploy", "plan", "destroy", "api-key", "env"])
    parser.add_argument(
        "--port",
        type=int,
        help=f"the emulator's port (default ${PORT_ENV_VAR}); must be the running one's if any; "
        f"a new one starts on it, else on {DEFAULT_PORT}",
    )
    parser.add_argument("--synth-dir", type=Path, default=SYNTH_DIR)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    synth_dir, workdir = args.synth_dir.resolve(), args.workdir.resolve()
    try:
        requested = requested_port(args.port)
        if args.command == "api-key":
            print(live_api_key(workdir, api_key_emulator(workdir, requested)))
            return 0
        if args.command == "destroy":
            _destroy(synth_dir, workdir, checkout_emulator(workdir, requested))
            return 0
        if args.command == "plan":
            running = checkout_emulator(workdir, requested)
            if running is None:
                raise no_emulator(workdir)
            print(emulator_line(running, False, workdir), flush=True)
            return _plan(LocalTarget(running.endpoint, synth_dir, workdir, verbose=True))
        if args.command == "env":
            emulator, started = ensure_emulator(workdir, requested)
            print(emulator_line(emulator, started, workdir), file=sys.stderr)
            print(cdktf_exports(LocalTarget(emulator.endpoint, synth_dir, workdir)))
            return 0
        stacks = synthesized_stacks(synth_dir)  # nothing to deploy: fail before starting an emulator
        emulator, started = ensure_emulator(workdir, requested)
        print(emulator_line(emulator, started, workdir), flush=True)
        _deploy(LocalTarget(emulator.endpoint, synth_dir, workdir, verbose=True), emulator, stacks)
        return 0
    except ToolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
