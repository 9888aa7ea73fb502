"""The CI formats of `dasct check`, within the limits each CI publishes.

- github: workflow commands (render.findings_github), all of them, plus one notice when
  there are more than GitHub shows on a step;
- markdown: the job summary for `$GITHUB_STEP_SUMMARY`, listing every finding, cut with
  one line saying how many more (and where they all are) before GitHub's 1 MiB limit;
- codequality: GitLab's code quality report (a Code Climate subset), one entry per
  finding with a fingerprint unique in the report (GitLab collapses equal fingerprints);
- sarif: render.findings_sarif, capped at code scanning's 25,000 results per run and
  10 MB gzipped, saying in the document (and on stderr) what was left out.

No finding is dropped silently: past any limit the output says how many are not shown
and where all of them are (`dasct check ... --format json`, which has no limit).
"""

from __future__ import annotations

import gzip
import hashlib
import json

from dasct import render

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dasct.check import Finding

# GitHub's published limits (docs: "Workflow commands", "Adding a job summary", "SARIF
# support for code scanning").
ANNOTATIONS_PER_STEP = 10  # warnings shown per step (and at most 50 per job)
ANNOTATIONS_PER_JOB = 50
SUMMARY_BYTES = 1024 * 1024  # $GITHUB_STEP_SUMMARY, per step
SARIF_RESULTS = 25_000  # per run
SARIF_GZIP_BYTES = 10 * 1000 * 1000  # the gzipped upload

RULE = "dasct/protected-line"


def _everything(label: str) -> str:
    """Where every finding is, whatever a format could not show."""
    spec = label.removeprefix("range ").removeprefix("commit ")
    what = f"--range {spec}" if label.startswith("range ") else (
        f"--commit {spec}" if label.startswith("commit ") else "--staged")
    return f"`dasct check {what} --format json` lists them all"


def github(findings: Sequence[Finding], subjects: Mapping[str, str], label: str) -> str:
    """Every annotation as a workflow command, then a notice when GitHub hides some."""
    out = render.findings_github(findings, subjects)
    count = len(render.annotations_of(findings, subjects))
    if count > ANNOTATIONS_PER_STEP:
        hidden = count - ANNOTATIONS_PER_STEP
        # A notice is counted apart from warnings, so this one line is always shown.
        out += (
            f"::notice title={count} dasct annotations::GitHub shows {ANNOTATIONS_PER_STEP} "
            f"warnings per step (and {ANNOTATIONS_PER_JOB} per job): {hidden} of these "
            f"{count} are not shown on the diff. The job summary and the code scanning "
            f"alerts (SARIF) list every finding; {_everything(label)}."
        ).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A") + "\n"
    return out


_MD_SPECIAL = set("\\`*_{}[]()<>#!|~&")


def md(text: str) -> str:
    """text as literal Markdown inline text: non-printables escaped, every punctuation
    character that Markdown (or a table's `|`, or raw HTML) could read, backslashed."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in render.printable(text))


def markdown(
    findings: Sequence[Finding], subjects: Mapping[str, str], label: str, not_reported: int,
    limit: int = SUMMARY_BYTES,
) -> str:
    """The job summary: a count, the annotation limits when passed, a table of every
    finding; cut, with a line saying how many more and where, before `limit` bytes."""
    head = [f"## dasct: {md(label)}", ""]
    if not findings:
        head.append("No protected lines touched"
                    + (f" ({render.plural(not_reported, 'touch')} of kinds not reported)."
                       if not_reported else "."))
        return "\n".join(head) + "\n"
    defects = {f.defect for f in findings}
    head.append(f"This change rewrites or removes {render.plural(len(findings), 'line')} that "
                f"fixed {render.plural(len(defects), 'defect')}"
                + (f" ({not_reported} more of kinds not reported; `--all`)" if not_reported
                   else "") + ".")
    count = len(render.annotations_of(findings, subjects))
    if count > ANNOTATIONS_PER_STEP:
        head += ["", f"**{count - ANNOTATIONS_PER_STEP} of the {count} annotations are not "
                 f"shown on the diff**: GitHub shows {ANNOTATIONS_PER_STEP} warnings per step "
                 f"and {ANNOTATIONS_PER_JOB} per job. Every finding is in the table below and "
                 "in the code scanning alerts (SARIF)."]
    head += ["", "| defect | file | line before | line after | fixed by |",
             "| --- | --- | ---: | ---: | --- |"]
    rows = []
    for f in sorted(findings, key=lambda f: (f.defect, f.path, f.line)):
        after = (f"{f.after_line}" if f.after_path == f.path else
                 f"{md(f.after_path)}:{f.after_line}") if f.after_path else "deleted"
        fix = f"{f.commit[:12]} {md(subjects.get(f.commit, ''))}".rstrip()
        rows.append(f"| {md(f.defect)} | {md(f.path)} | {f.line} | {after} | {fix} |")
    text = "\n".join(head) + "\n"
    used = len(text.encode())
    for shown, row in enumerate(rows):
        left = len(rows) - shown
        cut = (f"\n… and {render.plural(left, 'more finding')} not listed: the summary "
               f"would pass GitHub's {limit // 1024} KiB limit; {_everything(label)}, and "
               "the code scanning alerts (SARIF) show them.\n")
        size = len(row.encode()) + 1
        # Room for this row and, unless it is the last, the line that would say the rest.
        if used + size + (len(cut.encode()) if left > 1 else 0) > limit:
            return text + cut
        text += row + "\n"
        used += size
    return text


def codequality(findings: Sequence[Finding], subjects: Mapping[str, str]) -> str:
    """GitLab's code quality report: a JSON array, one entry per finding, placed on the
    merge request's new side (the base's path and line when the file is gone)."""
    entries = []
    seen: set[str] = set()
    for f in sorted(findings, key=lambda f: (f.defect, f.path, f.line, f.commit)):
        basis = "\0".join((f.defect, f.path, str(f.line), f.commit, f.kind))
        fingerprint = hashlib.sha256(basis.encode("utf-8", "surrogateescape")).hexdigest()
        n = 1
        while fingerprint in seen:  # equal fingerprints are collapsed by GitLab: never
            n += 1
            fingerprint = hashlib.sha256(f"{basis}\0{n}".encode(
                "utf-8", "surrogateescape")).hexdigest()
        seen.add(fingerprint)
        fix = f"{f.commit[:12]} {subjects.get(f.commit, '')}".strip()
        where = (f"line {f.after_line} after the change" if f.after_path else
                 "the change deletes the file")
        entries.append({
            "description": f"Line {f.line} of {f.path} before this change ({where}) fixed "
                           f"{f.defect} ({fix}); this change rewrites or removes it.",
            "check_name": RULE,
            "fingerprint": fingerprint,
            "severity": "minor",
            "location": {"path": f.after_path or f.path,
                         "lines": {"begin": (f.after_line or 1) if f.after_path else f.line}},
        })
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


def sarif(
    findings: Sequence[Finding], subjects: Mapping[str, str], label: str,
    max_results: int = SARIF_RESULTS, max_gzip: int = SARIF_GZIP_BYTES,
) -> tuple[str, int]:
    """render.findings_sarif within code scanning's limits, and how many results it left
    out (each said in the run's notifications)."""
    document = json.loads(render.findings_sarif(findings, subjects))
    run = document["runs"][0]
    results = run["results"]
    total = len(results)

    def dumped(keep: int) -> str:
        run["results"] = results[:keep]
        if keep < total:
            run["invocations"] = [{"executionSuccessful": True,
                                   "toolExecutionNotifications": [{
                                       "level": "warning",
                                       "message": {"text": (
                                           f"{total - keep} of {total} results are not in "
                                           "this file (code scanning takes "
                                           f"{max_results} per run and {max_gzip} bytes "
                                           f"gzipped); {_everything(label)}")}}]}]
        else:
            run.pop("invocations", None)
        return json.dumps(document, indent=2) + "\n"

    keep = min(total, max_results)
    text = dumped(keep)
    if len(gzip.compress(text.encode())) > max_gzip:
        low, high = 0, keep  # the most results that fit: size grows with their number
        while low < high:
            mid = (low + high + 1) // 2
            if len(gzip.compress(dumped(mid).encode())) <= max_gzip:
                low = mid
            else:
                high = mid - 1
        keep = low
        text = dumped(keep)
    return text, total - keep
