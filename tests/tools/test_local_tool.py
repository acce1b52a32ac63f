"""`python -m tools.local`: the request commands printed after a deploy, `api-key` when nothing is deployed, the
checkout's one emulator found from its record, and the copy of a synth folder cdktf ran in.

The commands themselves are run against a deployment in tests/e2e/test_http.py, and `npx cdktf` next to the make
targets in tests/e2e/test_local_workflow.py; here only their shape, and what needs an emulator but no deployment.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from local_aws import HEALTH_PATH
from local_aws.__main__ import RECORD_NAME, Emulator, _alive, recorded, shutdown
from local_aws.private import free_port, private_emulator
from tools import local, request_key
from tools.local import LocalTarget, Stack, synthesized_stacks
from tools.paths import PROJECT_ROOT
from tools.terraform import ToolError

OUTPUTS = {
    "account_id": "123456789012",
    "region": "eu-west-1",
    "rest_api_id": "a1b2c3d4e5",
    "stage_name": "v1",
    "ssm_parameter_name": "/APIGateway/APIKeys/kms-key-generator",
}
SERVICE = Stack("kms-key-generator", "s3", {"output": {"ssm_parameter_name": {}}})
ALIAS = re.compile(r"demo-[0-9a-f]{8}")


def target_in(workdir: Path, port: int = 4599) -> LocalTarget:
    return LocalTarget(f"http://127.0.0.1:{port}", workdir / "cdktf.out", workdir)


def test_curl_line_posts_the_body_with_the_key_read_when_it_runs(tmp_path):
    curl, _ = local.request_commands(target_in(tmp_path), SERVICE, OUTPUTS)

    words = shlex.split(curl)  # the $(...) stays one word, as bash passes it to curl after substitution
    assert words[:2] == ["curl", "-sS"]
    assert words[words.index("-X") + 1 : words.index("-X") + 3] == [
        "POST",
        "http://127.0.0.1:4599/restapis/a1b2c3d4e5/v1/_user_request_/keys",
    ]
    headers = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    api_key_command = f"{shlex.quote(sys.executable)} -m tools.local api-key --port 4599 --workdir {tmp_path}"
    assert headers == ["Content-Type: application/json", f"x-api-key: $({api_key_command})"]
    body = json.loads(words[words.index("-d") + 1])
    assert ALIAS.fullmatch(body.pop("key_alias"))
    assert body == {
        "account": "123456789012",
        "region": "eu-west-1",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_description": "demo key",
    }


def test_request_key_line_is_the_client_with_local(tmp_path):
    _, line = local.request_commands(target_in(tmp_path), SERVICE, OUTPUTS)

    python, module, *argv = shlex.split(line)
    assert (python, module) == (sys.executable, "-m")
    assert argv[0] == "tools.request_key"
    args = request_key.parse_args(argv[1:], {})
    assert (args.local, args.port, args.stack_dir) == (True, 4599, str(tmp_path / "stacks" / "kms-key-generator"))
    assert (args.account, args.region, args.description) == ("123456789012", "eu-west-1", "demo key")
    assert ALIAS.fullmatch(args.alias)


def test_default_workdir_needs_no_workdir_or_stack_dir_flags():
    curl, line = local.request_commands(target_in(local.DEFAULT_WORKDIR, 4566), SERVICE, OUTPUTS)

    assert "api-key --port 4566)" in curl and "--workdir" not in curl
    assert "--stack-dir" not in line and "--port 4566" in line


def test_every_print_picks_fresh_aliases(tmp_path):
    lines = [line for _ in range(2) for line in local.request_commands(target_in(tmp_path), SERVICE, OUTPUTS)]

    aliases = [ALIAS.search(line).group(0) for line in lines]
    assert len(set(aliases)) == 4


def test_print_outputs_hides_sensitive_values_and_prints_the_commands(tmp_path, capsys):
    class Deployed(LocalTarget):
        def outputs(self, stack):
            if stack.name != SERVICE.name:
                return {"state_bucket": {"value": "kms-key-generator-state", "sensitive": False}}
            shown = {name: {"value": value, "sensitive": False} for name, value in OUTPUTS.items()}
            return shown | {"api_key_value": {"value": "s3cr3t-key-value", "sensitive": True}}

    deployed = Deployed("http://127.0.0.1:4599", tmp_path / "cdktf.out", tmp_path)
    local._print_outputs(deployed, [Stack("kms-key-generator-remote-state", "local", {}), SERVICE])

    out = capsys.readouterr().out
    assert "  api_key_value = (sensitive)" in out and "s3cr3t-key-value" not in out
    assert '  state_bucket = "kms-key-generator-state"' in out
    curl, request = local.request_commands(deployed, SERVICE, OUTPUTS)  # the same lines but for the aliases
    printed = [ALIAS.sub("demo-*", line) for line in out.splitlines()]
    assert f"  {ALIAS.sub('demo-*', curl)}" in printed and f"  {ALIAS.sub('demo-*', request)}" in printed
    assert "lambda" not in out.lower()


def test_api_key_with_nothing_deployed_fails_with_one_clear_line(tmp_path, capsys):
    status = local.main(["api-key", "--port", str(free_port()), "--workdir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert (status, out, err) == (1, "", f"error: nothing deployed from {tmp_path}: run `make deploy-local` first\n")


def test_api_key_without_an_emulator_fails_with_one_clear_line(tmp_path, capsys):
    copy = tmp_path / "stacks" / "kms-key-generator"
    (copy / ".terraform").mkdir(parents=True)
    config = {"terraform": {"backend": {"s3": {}}}, "output": {"ssm_parameter_name": {"value": "x"}}}
    (copy / "cdk.tf.json").write_text(json.dumps(config))
    port = free_port()

    status = local.main(["api-key", "--port", str(port), "--workdir", str(tmp_path)])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err == (
        f"error: no emulator of this checkout runs (none recorded in {tmp_path}): run `make deploy-local` first\n"
    )


def test_emulator_client_ignores_the_callers_profile(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALCALLERKEY000")

    ssm = local.emulator_client("http://127.0.0.1:9", "ssm", "eu-west-1")

    assert ssm.meta.region_name == "eu-west-1" and ssm.meta.endpoint_url == "http://127.0.0.1:9"
    assert ssm._request_signer._credentials.access_key == "testing"


def test_api_key_is_a_command_next_to_deploy_plan_destroy(capsys):
    with pytest.raises(SystemExit):
        local.main(["--help"])

    assert "{deploy,plan,destroy,api-key,env}" in capsys.readouterr().out


# --- the checkout's one emulator -------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Emulator:
    """A real emulator (`python -m local_aws serve` on a free port), as a record would name it."""
    with private_emulator(tmp_path_factory.mktemp("emulator") / "emulator.log") as endpoint:
        with urllib.request.urlopen(endpoint + HEALTH_PATH) as answer:
            yield Emulator(json.load(answer)["pid"], int(endpoint.rsplit(":", 1)[1]))


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A working folder with an empty synth (`--synth-dir`), and no port asked for in the environment."""
    monkeypatch.delenv("LOCAL_AWS_PORT", raising=False)
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "manifest.json").write_text('{"stacks": {}}')
    return tmp_path


def record(workdir: Path, emulator: Emulator) -> None:
    (workdir / RECORD_NAME).write_text(json.dumps({"pid": emulator.pid, "port": emulator.port}))


def run(command: str, workdir: Path, *args: str) -> int:
    return local.main([command, "--workdir", str(workdir), "--synth-dir", str(workdir / "synth"), *args])


@pytest.mark.parametrize("command", ["deploy", "plan", "destroy", "env", "api-key"])
def test_another_port_than_the_running_emulators_is_refused_naming_both(
    command, checkout, running, monkeypatch, capsys
):
    record(checkout, running)
    other = free_port()
    monkeypatch.setenv("LOCAL_AWS_PORT", str(other))

    assert run(command, checkout) == 1

    out, err = capsys.readouterr()
    assert err == (
        f"error: LOCAL_AWS_PORT={other} but this checkout's emulator runs on {running.port} "
        f"(pid {running.pid}); unset LOCAL_AWS_PORT or run `make destroy-local` first\n"
    )
    assert "export" not in out
    assert recorded(checkout) == running  # neither stopped nor forgotten


def test_another_port_by_flag_is_refused_too(checkout, running, capsys):
    record(checkout, running)

    assert run("plan", checkout, "--port", str(running.port + 1)) == 1

    assert capsys.readouterr().err.startswith(
        f"error: --port={running.port + 1} but this checkout's emulator runs on "
        f"{running.port} (pid {running.pid}); drop --port"
    )


@pytest.mark.parametrize("asked", [None, "same"])
def test_the_recorded_emulator_is_reused(asked, checkout, running, monkeypatch, capsys):
    record(checkout, running)
    if asked:
        monkeypatch.setenv("LOCAL_AWS_PORT", str(running.port))

    assert run("env", checkout) == 0

    out, err = capsys.readouterr()
    assert err == (
        f"## emulator: local_aws on {running.endpoint} (pid {running.pid}), this checkout's, already running\n"
    )
    assert f"export AWS_ENDPOINT_URL={running.endpoint}" in out.splitlines()
    assert recorded(checkout) == running


def test_env_gives_npx_cdktf_the_emulator_offline_and_the_make_targets_state(checkout, running, capsys):
    record(checkout, running)
    assert run("env", checkout) == 0
    exports = capsys.readouterr().out

    shell = subprocess.run(
        ["sh", "-c", 'eval "$1" && env', "sh", exports],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_PROFILE": "production", "AWS_SESSION_TOKEN": "real"},
    )

    env = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert env["AWS_ENDPOINT_URL"] == running.endpoint
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("testing", "testing")
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert (env["CDKTF_SKIP_PROVIDER_LOCK"], env["CHECKPOINT_DISABLE"]) == ("true", "1")
    assert "filesystem_mirror" in Path(env["TF_CLI_CONFIG_FILE"]).read_text()
    # cdktf resolves the remote-state stack's relative state path from its output folder: where make keeps it.
    name, path = "kms-key-generator-remote-state", "../../../terraform.kms-key-generator-remote-state.tfstate"
    state = Stack(name, "local", {"terraform": {"backend": {"local": {"path": path}}}})  # as synthesized
    target = LocalTarget(running.endpoint, checkout / "synth", checkout)
    cdktf_state = (Path(env["CDKTF_OUTPUT"]) / "stacks" / name / path).resolve()
    assert target.state_file(state) == cdktf_state == checkout / f"terraform.{name}.tfstate"
    assert target.backend_config(state) == [f"-backend-config=path={target.state_file(state)}"]


def test_a_stale_record_is_removed_and_never_used(checkout, capsys):
    gone = subprocess.Popen(["true"])
    gone.wait()
    record(checkout, Emulator(gone.pid, free_port()))

    assert run("plan", checkout) == 1

    err = capsys.readouterr().err
    assert f"removed the stale record {checkout / RECORD_NAME}: pid {gone.pid}" in err
    assert err.endswith(
        f"error: no emulator of this checkout runs (none recorded in {checkout}): run `make deploy-local` first\n"
    )
    assert not (checkout / RECORD_NAME).exists()


def test_a_record_naming_a_stranger_is_removed_and_the_stranger_left_alone(checkout, capsys):
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        record(checkout, Emulator(stranger.pid, free_port()))

        assert run("destroy", checkout) == 0

        assert "## no emulator of this checkout runs: nothing to destroy" in capsys.readouterr().out
        assert not (checkout / RECORD_NAME).exists()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_port_held_by_another_checkouts_emulator_is_refused(checkout, running, capsys):
    assert run("deploy", checkout, "--port", str(running.port)) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"error: port {running.port} is used by another local_aws (pid {running.pid}")
    assert f"not the one recorded in {checkout / RECORD_NAME}: pick another port" in err
    assert not (checkout / RECORD_NAME).exists()


def test_destroy_acts_on_the_recorded_emulator_and_stops_it(checkout, capsys):
    workdir = checkout / ".local-aws"  # where `python -m local_aws start` records, run from the checkout
    port = free_port()
    started = subprocess.run(
        [sys.executable, "-m", "local_aws", "start", "--port", str(port)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(local.PROJECT_ROOT)},
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr
    try:
        emulator = recorded(workdir)
        assert emulator is not None and emulator.port == port
        (workdir / "terraform.kms-key-generator-remote-state.tfstate").write_text("{}")
        capsys.readouterr()

        assert local.main(["destroy", "--workdir", str(workdir), "--synth-dir", str(checkout / "synth")]) == 0

        out = capsys.readouterr().out
        assert f"## emulator: local_aws on {emulator.endpoint} (pid {emulator.pid}), this checkout's" in out
        assert out.endswith(f"## emulator: local_aws on {emulator.endpoint} (pid {emulator.pid}) stopped\n")
        assert not _alive(emulator.pid) and recorded(workdir) is None
        assert list(workdir.glob("*.tfstate")) == []
    finally:
        shutdown(workdir)


def test_a_non_numeric_port_variable_is_an_error(checkout, monkeypatch, capsys):
    monkeypatch.setenv("LOCAL_AWS_PORT", "http")

    assert run("plan", checkout) == 1

    assert capsys.readouterr().err == "error: $LOCAL_AWS_PORT is not a port number: 'http'\n"


@pytest.mark.parametrize(
    ("environment", "arguments", "passed_on"),
    [({}, [], "unset"), ({"LOCAL_AWS_PORT": "4611"}, [], "4611"), ({}, ["LOCAL_AWS_PORT=4612"], "4612")],
    ids=["make's default", "from the environment", "on the command line"],
)
def test_make_passes_on_a_port_only_when_the_user_gave_one(tmp_path, environment, arguments, passed_on):
    """A port passed on must be the running emulator's (above), so make's own default (4566) never is."""
    probe = tmp_path / "probe.mk"
    probe.write_text('port-probe:\n\t@echo "[$${LOCAL_AWS_PORT-unset}]"\n')
    env = {name: value for name, value in os.environ.items() if name not in ("LOCAL_AWS_PORT", "MAKEFLAGS")}
    made = subprocess.run(
        ["make", "-s", "-f", "Makefile", "-f", str(probe), "port-probe", *arguments],
        cwd=PROJECT_ROOT,
        env=env | environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (made.returncode, made.stdout) == (0, f"[{passed_on}]\n"), made.stderr


# --- copying a synth folder, progress ----------------------------------------------


def test_a_synth_folder_cdktf_ran_in_is_copied_without_what_cdktf_left(tmp_path):
    """`npx cdktf diff` leaves `.terraform` (provider links into the mirror), its lock file and `plan` in
    the stack folder; the working copy's `.terraform` links to the same provider, so copying them crashed."""
    provider = tmp_path / "mirror" / "linux_amd64"
    provider.mkdir(parents=True)
    (provider / "terraform-provider-aws").write_bytes(b"provider")
    link = Path(".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64")
    synth, work = tmp_path / "synth" / "stacks" / "s", tmp_path / "work" / "stacks" / "s"
    for folder in synth, work:
        (folder / link).parent.mkdir(parents=True)
        (folder / link).symlink_to(provider)
        (folder / ".terraform.lock.hcl").write_text(f"# {folder.parent.parent.name}'s lock\n")
    (synth / "cdk.tf.json").write_text("{}")
    (synth / "assets").mkdir()
    (synth / "assets" / "handler.zip").write_bytes(b"zip")
    (synth / "plan").write_bytes(b"binary plan")
    (work / "stale.json").write_text("{}")
    probe = shutil.copytree(work, tmp_path / "probe", symlinks=True)
    # The crash seen after `npx cdktf diff`: "<DirEntry ...> and ... are the same file", one character per error.
    with pytest.raises(shutil.Error, match=re.escape("['<', 'D', 'i', 'r', 'E', 'n', 't', 'r', 'y'")):
        shutil.copytree(synth, probe, dirs_exist_ok=True)

    copy = LocalTarget("http://127.0.0.1:9", tmp_path / "synth", tmp_path / "work").prepare(Stack("s", "s3", {}))

    files = sorted(
        str(path.relative_to(copy))
        for path in copy.rglob("*")
        if path.is_file() and ".terraform/" not in f"{path.relative_to(copy)}/"
    )
    assert files == [".terraform.lock.hcl", "assets/handler.zip", "cdk.tf.json"]
    assert (copy / ".terraform.lock.hcl").read_text() == "# work's lock\n"
    assert (copy / link).is_symlink() and (copy / link / "terraform-provider-aws").read_bytes() == b"provider"


@pytest.mark.parametrize(
    "output, counts",
    [
        (
            "...\nApply complete! Resources: 9 added, 0 changed, 0 destroyed.\n\nOutputs:\n",
            "9 added, 0 changed, 0 destroyed",
        ),
        (
            "Apply complete! Resources: 1 imported, 0 added, 2 changed, 0 destroyed.",
            "1 imported, 0 added, 2 changed, 0 destroyed",
        ),
        ("Destroy complete! Resources: 62 destroyed.\n", "62 destroyed"),
        ("Error: something\n", "no resource count in Terraform's output"),
    ],
)
def test_resource_changes_are_terraforms_own_counts(output, counts):
    assert local.resource_changes(output) == counts


def test_deploy_prints_each_stacks_steps_and_ends_with_the_counts_and_the_emulator(tmp_path, monkeypatch, capsys):
    stacks = [Stack("app-remote-state", "local", {}), Stack("app", "s3", {})]
    for stack in stacks:
        (tmp_path / "synth" / "stacks" / stack.name).mkdir(parents=True)
    applied = {"app-remote-state": "9 added, 0 changed, 0 destroyed", "app": "0 added, 1 changed, 0 destroyed"}

    def terraform(*args, cwd, env, **_):
        stdout = {"apply": f"Apply complete! Resources: {applied[cwd.name]}.", "output": "{}"}.get(args[0], "")
        return subprocess.CompletedProcess(args, 0, stdout, "")

    monkeypatch.setattr(local, "terraform", terraform)
    monkeypatch.setattr(LocalTarget, "backend_config", lambda self, stack: [])
    emulator = Emulator(4242, 4599)
    target = LocalTarget(emulator.endpoint, tmp_path / "synth", tmp_path / "work", verbose=True)

    local._deploy(target, emulator, stacks)

    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == [
        "## app-remote-state: init",
        "## app-remote-state: apply",
        "## app-remote-state: applied: 9 added, 0 changed, 0 destroyed",
        "## app: init",
        "## app: apply",
        "## app: applied: 0 added, 1 changed, 0 destroyed",
    ]
    assert lines[-4:] == [
        "Deployed to local_aws on http://127.0.0.1:4599 (pid 4242):",
        "  app-remote-state: 9 added, 0 changed, 0 destroyed",
        "  app: 0 added, 1 changed, 0 destroyed",
        "The emulator keeps running: `make plan-local`, then `make destroy-local`.",
    ]


def test_a_stack_with_an_hcp_cloud_block_is_refused_by_the_local_targets(tmp_path):
    stack = tmp_path / "stacks" / "svc"
    stack.mkdir(parents=True)
    (tmp_path / "manifest.json").write_text(json.dumps({"stacks": {"svc": {}}}))
    (stack / "cdk.tf.json").write_text(json.dumps({"terraform": {"cloud": {"organization": "o"}}}))

    with pytest.raises(ToolError, match='stack svc keeps its state in HCP Terraform: .*state.backend = "s3"'):
        synthesized_stacks(tmp_path)


def test_init_runs_again_only_when_what_it_reads_or_wrote_changed(tmp_path, monkeypatch, capsys):
    stack = Stack("app", "s3", {"terraform": {"backend": {"s3": {"bucket": "state"}}}})
    (tmp_path / "synth" / "stacks" / stack.name).mkdir(parents=True)
    inits: list[str] = []
    failing = False

    def terraform(*args, cwd, env, **_):
        assert args[0] == "init"
        if failing:
            raise local.ToolError("terraform init failed")
        inits.append(env.get("TF_WORKSPACE", "default"))
        (cwd / ".terraform" / "providers").mkdir(parents=True, exist_ok=True)
        (cwd / ".terraform" / "terraform.tfstate").write_text('{"backend": "as initialized"}')
        (cwd / ".terraform.lock.hcl").write_text("# lock\n")
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.delenv("TF_WORKSPACE", raising=False)
    monkeypatch.setattr(local, "terraform", terraform)
    first = LocalTarget("http://127.0.0.1:4599", tmp_path / "synth", tmp_path / "work", verbose=True)
    copy = first.stack_dir(stack)

    def init_runs(target: LocalTarget = first, initialized: Stack = stack) -> bool:
        before = len(inits)
        target.init(initialized)
        return len(inits) > before

    assert init_runs()
    assert not init_runs()  # the same emulator, backend, providers and mirror: nothing for an init to do
    moved = LocalTarget("http://127.0.0.1:4600", tmp_path / "synth", tmp_path / "work")
    assert init_runs(moved)  # another emulator: other backend settings
    assert init_runs()
    assert init_runs(initialized=Stack("app", "s3", {"terraform": {"backend": {"s3": {"bucket": "other"}}}}))
    assert init_runs()
    monkeypatch.setenv("TF_WORKSPACE", "blue")
    assert init_runs() and inits[-1] == "blue"
    monkeypatch.delenv("TF_WORKSPACE")
    assert init_runs()
    assert not init_runs()

    (copy / ".terraform.lock.hcl").unlink()
    assert init_runs()  # no lock file: the providers are installed again
    (copy / ".terraform" / "terraform.tfstate").write_text('{"backend": "from a terraform init by hand"}')
    assert init_runs()  # someone else initialized the copy: ours reinitializes it
    shutil.rmtree(copy / ".terraform" / "providers")
    assert init_runs()
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "data"))
    assert init_runs() and init_runs()  # `.terraform` is elsewhere: nothing here to trust
    monkeypatch.delenv("TF_DATA_DIR")

    failing = True
    with pytest.raises(local.ToolError):
        moved.init(stack)
    assert not (copy / local.INIT_STAMP).exists()  # a failed init is never taken for a good one
    failing = False
    assert init_runs()
    assert capsys.readouterr().out.count("## app: init: up to date") == 2
