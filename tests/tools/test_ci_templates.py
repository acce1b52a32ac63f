"""The GitHub Actions templates (ci-templates/github/): clean under the pinned actionlint (with shellcheck), every
action pinned by commit, least-privilege permissions, the promised triggers and steps, and the comment script
posting or updating exactly one pull-request comment (run under node against a stand-in GitHub API)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import actionlint
from tools.terraform import ToolError

REVIEW = actionlint.TEMPLATES_DIR / "terraform-review.yml"
APPLY = actionlint.TEMPLATES_DIR / "terraform-apply.yml"
USES = re.compile(r"^\s*(?:- )?uses: (?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?P<comment>.*)$")


def _workflow(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return workflow


def _steps(path: Path) -> list[dict[str, Any]]:
    (job,) = _workflow(path)["jobs"].values()
    return job["steps"]


def _step(path: Path, name: str) -> dict[str, Any]:
    (step,) = [step for step in _steps(path) if step.get("name") == name]
    return step


def test_templates_pass_the_pinned_actionlint():
    try:
        version = subprocess.run(
            [actionlint.binary(actionlint.ACTIONLINT), "-version"], capture_output=True, text=True, check=True
        )
        result = actionlint.lint(actionlint.templates())
    except ToolError as error:
        pytest.fail(str(error))
    assert actionlint.ACTIONLINT.version in version.stdout
    assert actionlint.templates() == [APPLY, REVIEW]
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", [REVIEW, APPLY], ids=lambda path: path.name)
def test_every_action_is_pinned_by_full_commit_sha_with_its_version(path: Path):
    uses = [match for line in path.read_text().splitlines() if (match := USES.match(line))]
    assert uses
    for match in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", match["ref"]), f"{match['action']}@{match['ref']} is not a commit SHA"
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", match["comment"]), f"{match['action']}: no `# vX.Y.Z` comment"


def test_permissions_are_least_privilege():
    review, apply = _workflow(REVIEW), _workflow(APPLY)
    assert review["permissions"] == apply["permissions"] == {}
    assert review["jobs"]["review"]["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    assert apply["jobs"]["apply"]["permissions"] == {"contents": "read", "id-token": "write"}


def test_review_synthesizes_scans_diffs_and_plans_the_service_stack_on_pull_requests():
    workflow = _workflow(REVIEW)
    # pull_request, never pull_request_target: a pull request's code never runs with write access or AWS roles of
    # the base repository when it comes from a fork.
    assert list(workflow["on"]) == ["pull_request"]
    runs = [step.get("run", "") for step in _steps(REVIEW)]
    assert runs[4:6] == ["make synth", "make scan"]
    assert 'make --silent diff BASE="$BASE_SHA" > diff.md' in runs[6]
    credentials = _step(REVIEW, "AWS credentials (OIDC)")
    assert credentials["uses"].startswith("aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    plan = _step(REVIEW, "terraform plan (service stack)")
    assert plan["working-directory"] == "${{ steps.stack.outputs.dir }}"
    assert "terraform plan -no-color -lock=false" in plan["run"]
    assert "-remote-state" in _step(REVIEW, "Service stack folder")["run"]


def test_apply_applies_the_service_stack_on_push_to_main_behind_an_environment():
    workflow = _workflow(APPLY)
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    assert workflow["jobs"]["apply"]["environment"] == "production"
    assert workflow["concurrency"] == {"group": "terraform-apply", "cancel-in-progress": False}
    assert [step.get("run") for step in _steps(APPLY)][4:6] == ["make synth", "make scan"]
    credentials = _step(APPLY, "AWS credentials (OIDC)")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    apply = _step(APPLY, "terraform apply (service stack)")
    assert apply["working-directory"] == "${{ steps.stack.outputs.dir }}"
    assert "terraform apply -no-color -auto-approve" in apply["run"]


# --- the comment script, run as actions/github-script runs it ----------------------------------------------------

# github-script wraps `script` in an async function of (github, context, core, ..., require); this stand-in
# records the REST calls and answers listComments with the comments given.
HARNESS = """
const fs = require('fs');
const [scriptFile, commentsFile] = process.argv.slice(2);
const calls = [];
const github = {
  rest: { issues: {
    listComments: 'listComments',
    createComment: async (args) => { calls.push(['create', args]); },
    updateComment: async (args) => { calls.push(['update', args]); },
  } },
  paginate: async (method, args) => { calls.push([method, args]); return JSON.parse(fs.readFileSync(commentsFile)); },
};
const context = { repo: { owner: 'acme', repo: 'keys' }, issue: { number: 7 } };
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const script = new AsyncFunction('github', 'context', 'core', 'require', fs.readFileSync(scriptFile, 'utf8'));
script(github, context, {}, require)
  .then(() => console.log(JSON.stringify(calls)), (error) => { console.error(error); process.exit(1); });
"""
MARKER = "<!-- kms-key-generator synth-diff config/prod.toml -->"
LIST = ["listComments", {"owner": "acme", "repo": "keys", "issue_number": 7, "per_page": 100}]


def _post(tmp_path: Path, diff: str, comments: list[dict[str, Any]]) -> list[list[Any]]:
    """Run the template's comment script on `diff` with `comments` on the pull request; the REST calls it made."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found on PATH: install Node 20+ (the project needs it for cdktf)")
    step = _step(REVIEW, "Post or update the diff comment")
    assert step["uses"].startswith("actions/github-script@")
    (tmp_path / "script.js").write_text(step["with"]["script"])
    (tmp_path / "harness.js").write_text(HARNESS)
    (tmp_path / "comments.json").write_text(json.dumps(comments))
    (tmp_path / "diff.md").write_text(diff)
    result = subprocess.run(
        [node, "harness.js", "script.js", "comments.json"],
        cwd=tmp_path,
        env={"PATH": "", "DIFF_FILE": str(tmp_path / step["env"]["DIFF_FILE"]), "KMSKG_CONFIG": "config/prod.toml"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_first_run_creates_the_comment_with_the_hidden_marker(tmp_path: Path):
    calls = _post(tmp_path, "## Synth diff\n", [{"id": 1, "user": {"type": "User"}, "body": "looks good"}])
    assert calls == [
        LIST,
        ["create", {"owner": "acme", "repo": "keys", "issue_number": 7, "body": f"{MARKER}\n## Synth diff\n"}],
    ]


def test_later_runs_update_the_bots_comment_instead_of_adding_one(tmp_path: Path):
    comments = [
        {"id": 1, "user": {"type": "User"}, "body": f"{MARKER}\nquoted by a person"},
        {"id": 2, "user": {"type": "Bot"}, "body": f"{MARKER}\nold diff"},
        {"id": 3, "user": {"type": "Bot"}, "body": "<!-- kms-key-generator synth-diff config/dev.toml -->\nother env"},
    ]
    calls = _post(tmp_path, "new diff\n", comments)
    update = {"owner": "acme", "repo": "keys", "comment_id": 2, "body": f"{MARKER}\nnew diff\n"}
    assert calls == [LIST, ["update", update]]


def test_a_diff_longer_than_a_comment_is_truncated_with_a_note(tmp_path: Path):
    calls = _post(tmp_path, "x" * 70_000, [])
    body = calls[1][1]["body"]
    assert len(body) == 65_536
    assert body.startswith(f"{MARKER}\nxxx")
    assert body.endswith("_Truncated: the whole diff is in the job summary of this run._")
