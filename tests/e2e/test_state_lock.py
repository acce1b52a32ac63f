"""State locking: while one apply holds the lock, a second fails with Terraform's lock error.

The state afterwards is intact: same lineage, serial advanced, no resource lost, lock released. Not "advanced
by one": Terraform persists intermediate snapshots during an apply that runs long (a busy machine), each a
serial of its own.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.support.emulator import client, emulator
from tests.support.synth import SERVICE_STACK
from tools.local import LocalTarget, synthesized_stacks
from tools.terraform import terraform_binary


def _state(target: LocalTarget, backend: dict) -> dict:
    body = client(target, "s3").get_object(Bucket=backend["bucket"], Key=backend["key"])["Body"].read()
    return json.loads(body)


def _addresses(state: dict) -> set[str]:
    return {f"{r['type']}.{r['name']}" for r in state["resources"] if r["mode"] == "managed"}


def _lock_held(target: LocalTarget, backend: dict) -> bool:
    lock_id = f"{backend['bucket']}/{backend['key']}"
    item = client(target, "dynamodb").get_item(TableName=backend["dynamodb_table"], Key={"LockID": {"S": lock_id}})
    return "Item" in item and "Info" in item["Item"]


pytestmark = pytest.mark.e2e


def test_concurrent_apply_fails_on_the_lock_and_state_stays_intact(no_waf_synth, retagged_synth, tmp_path):
    with emulator(tmp_path / "emulator.log") as endpoint:
        first = LocalTarget(endpoint, no_waf_synth.outdir, tmp_path / "first")
        first.deploy_all()
        service = next(s for s in synthesized_stacks(no_waf_synth.outdir) if s.name == SERVICE_STACK)
        backend = service.config["terraform"]["backend"]["s3"]
        before = _state(first, backend)

        # Two engineers, two working copies of the same retagged change.
        holder = LocalTarget(endpoint, retagged_synth.outdir, tmp_path / "holder")
        rival = LocalTarget(endpoint, retagged_synth.outdir, tmp_path / "rival")
        holder_dir, rival_dir = holder.init(service), rival.init(service)
        applying = subprocess.Popen(
            [terraform_binary(), "apply", "-auto-approve", "-no-color", "-parallelism=1"],
            cwd=holder_dir,
            env=holder.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not _lock_held(holder, backend):
                assert applying.poll() is None, "the first apply ended before its lock was seen"
                assert time.monotonic() < deadline, "the first apply never took the lock"
                time.sleep(0.05)
            blocked = subprocess.run(
                [terraform_binary(), "apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
                cwd=rival_dir,
                env=rival.env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            still_applying = applying.poll() is None
        finally:
            stdout, stderr = applying.communicate(timeout=300)

        assert still_applying, "the lock holder must still be running when the rival is refused"
        assert blocked.returncode == 1
        assert "Error acquiring the state lock" in blocked.stderr
        assert applying.returncode == 0, stdout + stderr

        after = _state(first, backend)
        assert after["lineage"] == before["lineage"]
        assert after["serial"] > before["serial"]
        assert _addresses(after) == _addresses(before)
        assert not _lock_held(first, backend)
