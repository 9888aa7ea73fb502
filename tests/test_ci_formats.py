"""The CI formats of `dasct check` (dasct.ci_formats) and the limits of the CIs that read
them: through the real CLI on real repositories, and the byte and count caps directly."""

from __future__ import annotations

import gzip
import json

import pytest

from dasct import ci_formats
from dasct.check import Finding
from dasct_run import dasct
from gitrepo import GitRepo
from sarif_schema import validate_sarif

FILES = 30


@pytest.fixture
def wide(repo: GitRepo) -> tuple[GitRepo, str, str]:
    """FILES files, each with one line fixed by its own defect, then a branch rewriting
    every one of them: (repo, base, head)."""
    repo.commit("initial", {f"src/m{i:02}.py": "a\nb\nc\n" for i in range(FILES)})
    for i in range(FILES):
        repo.commit(f"Fix PROJ-{i + 1} crash", {f"src/m{i:02}.py": f"a\nfixed {i}\nc\n"})
    base = repo.head()
    repo.git("checkout", "-q", "-b", "feature")
    head = repo.commit("Rewrite everything",
                       {f"src/m{i:02}.py": f"a\nrewritten {i}\nc\n" for i in range(FILES)})
    return repo, base, head


def check(repo: GitRepo, spec: str, fmt: str) -> str:
    result = dasct(repo.path, "check", "--range", spec, "--format", fmt)
    assert result.code == 0, result.err
    return result.out


def test_github_prints_every_annotation_and_says_how_many_are_hidden(
    wide: tuple[GitRepo, str, str],
) -> None:
    repo, base, head = wide
    lines = check(repo, f"{base}..{head}", "github").splitlines()
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert len(warnings) == FILES
    assert {w.split(",")[0] for w in warnings} == {
        f"::warning file=src/m{i:02}.py" for i in range(FILES)}
    (notice,) = [line for line in lines if line.startswith("::notice ")]
    assert f"{FILES - 10} of these {FILES} are not shown" in notice
    assert f"dasct check --range {base}..{head} --format json" in notice


def test_github_adds_no_notice_within_the_limit(fixed_one: tuple[GitRepo, str, str]) -> None:
    repo, base, head = fixed_one
    out = check(repo, f"{base}..{head}", "github")
    assert out.count("::warning ") == 1 and "::notice" not in out


def test_markdown_lists_every_finding_and_the_hidden_annotations(
    wide: tuple[GitRepo, str, str],
) -> None:
    repo, base, head = wide
    out = check(repo, f"{base}..{head}", "markdown")
    assert f"**{FILES - 10} of the {FILES} annotations are not shown on the diff**" in out
    rows = [line for line in out.splitlines() if line.startswith("| PROJ")]
    assert len(rows) == FILES
    assert sorted(r.split(" | ")[1] for r in rows) == sorted(
        f"src/m{i:02}.py" for i in range(FILES))
    assert all(r.split(" | ")[2:4] == ["2", "2"] for r in rows)


def test_markdown_and_codequality_write_a_document_when_nothing_is_touched(
    wide: tuple[GitRepo, str, str],
) -> None:
    repo, base, _ = wide
    assert "No protected lines touched." in check(repo, f"{base}..{base}", "markdown")
    assert json.loads(check(repo, f"{base}..{base}", "codequality")) == []


def test_codequality_has_one_entry_per_finding_with_unique_fingerprints(
    wide: tuple[GitRepo, str, str],
) -> None:
    repo, base, head = wide
    entries = json.loads(check(repo, f"{base}..{head}", "codequality"))
    assert len(entries) == FILES
    assert len({e["fingerprint"] for e in entries}) == FILES
    for e in entries:
        assert set(e) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert e["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert e["location"]["lines"]["begin"] == 2
        assert e["location"]["path"].startswith("src/m")


def test_codequality_fingerprints_stay_unique_for_equal_findings() -> None:
    # Two findings alike in every field (the same line reported twice) must not collapse.
    same = [Finding("PROJ-1", "x.py", 3, "a" * 40, "x.py", 3) for _ in range(3)]
    entries = json.loads(ci_formats.codequality(same, {}))
    assert len({e["fingerprint"] for e in entries}) == 3


def test_codequality_places_a_deleted_file_at_its_base_line() -> None:
    (entry,) = json.loads(ci_formats.codequality([Finding("K-1", "gone.py", 7, "b" * 40)], {}))
    assert entry["location"] == {"path": "gone.py", "lines": {"begin": 7}}
    assert "deletes the file" in entry["description"]


def many(n: int) -> list[Finding]:
    return [Finding(f"PROJ-{i}", f"src/file_{i:05}.py", 10, f"{i:040x}", f"src/file_{i:05}.py",
                    11) for i in range(n)]


def test_markdown_is_cut_before_the_summary_limit_saying_how_many_more() -> None:
    findings = many(20_000)  # ~1.6 MiB of table rows
    out = ci_formats.markdown(findings, {}, "range main..HEAD", 0)
    assert len(out.encode()) <= ci_formats.SUMMARY_BYTES
    shown = sum(line.startswith("| PROJ") for line in out.splitlines())
    assert 0 < shown < len(findings)
    assert (f"… and {len(findings) - shown} more findings not listed" in out
            and "`dasct check --range main..HEAD --format json` lists them all" in out)


def test_markdown_within_the_limit_is_not_cut() -> None:
    out = ci_formats.markdown(many(50), {}, "range main..HEAD", 2)
    assert sum(line.startswith("| PROJ") for line in out.splitlines()) == 50
    assert "more findings not listed" not in out and "2 more of kinds not reported" in out


def test_markdown_escapes_what_markdown_would_read() -> None:
    f = Finding("PROJ-1", "a|b_<img src=x>.py", 1, "c" * 40, "a|b_<img src=x>.py", 1)
    row = ci_formats.markdown([f], {"c" * 40: "Fix *it* [x](y)\n"}, "range a..b", 0)
    assert "a\\|b\\_\\<img src=x\\>.py" in row
    assert "Fix \\*it\\* \\[x\\]\\(y\\)\\\\n" in row  # printable's \\n, as text


def test_sarif_is_capped_per_run_and_says_so() -> None:
    text, cut = ci_formats.sarif(many(40), {}, "range main..HEAD", max_results=25)
    document = json.loads(text)
    validate_sarif(document)
    run = document["runs"][0]
    assert (len(run["results"]), cut) == (25, 15)
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["message"]["text"].startswith("15 of 40 results are not in this file")


def test_sarif_is_capped_by_its_gzipped_size() -> None:
    findings = many(400)
    full, cut = ci_formats.sarif(findings, {}, "range main..HEAD")
    assert cut == 0 and "invocations" not in json.loads(full)["runs"][0]
    limit = len(gzip.compress(full.encode())) // 2
    text, cut = ci_formats.sarif(findings, {}, "range main..HEAD", max_gzip=limit)
    assert len(gzip.compress(text.encode())) <= limit
    kept = len(json.loads(text)["runs"][0]["results"])
    assert kept + cut == len(findings) and 0 < kept < len(findings)
    validate_sarif(json.loads(text))


def test_sarif_defaults_are_code_scannings_limits() -> None:
    assert (ci_formats.SARIF_RESULTS, ci_formats.SARIF_GZIP_BYTES) == (25_000, 10_000_000)
    assert (ci_formats.ANNOTATIONS_PER_STEP, ci_formats.SUMMARY_BYTES) == (10, 1 << 20)


@pytest.fixture
def fixed_one(repo: GitRepo) -> tuple[GitRepo, str, str]:
    repo.commit("initial", {"x.py": "a\nb\n"})
    base = repo.commit("Fix PROJ-1", {"x.py": "a\nfixed\n"})
    repo.git("checkout", "-q", "-b", "feature")
    return repo, base, repo.commit("change", {"x.py": "a\nchanged\n"})
