"""Output formats for findings and protected lines: text for people, JSON and CI for tools.

The JSON field names are a contract (see docs/cli.md); fields may be added, never renamed.
"""

from __future__ import annotations

from collections import defaultdict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dasct.check import Finding


def ranges(lines: Iterable[int]) -> str:
    """1,2,3,7,9,10 -> '1-3, 7, 9-10'."""
    out: list[str] = []
    start = prev = None
    for n in sorted(set(lines)):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = n
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(out)


def findings_json(findings: Sequence[Finding]) -> str:
    """{"findings": [{"defect", "path", "line", "commit", "after_path", "after_line"}]}."""
    import json

    return json.dumps(
        {"findings": [f.as_dict() for f in findings]}, indent=2, ensure_ascii=False
    )


def findings_text(
    findings: Sequence[Finding], subjects: Mapping[str, str], label: str, strict: bool
) -> str:
    """Each defect once, its touched lines grouped into ranges, and where it was fixed."""
    if not findings:
        return ""
    by_defect: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    commits: dict[str, dict[str, None]] = defaultdict(dict)
    for f in findings:
        by_defect[f.defect][f.path].append(f.line)
        commits[f.defect][f.commit] = None
    count = len(by_defect)
    verdict = "the commit is blocked (strict mode)" if strict else "the commit goes on"
    head = (
        f"dasct: {label}: lines that fixed {count} defect{'s' * (count != 1)} are changed; "
        f"{verdict}, and QA will be asked to revalidate once it lands."
    )
    out = [head]
    for defect in sorted(by_defect):
        out.append(f"  {defect}")
        for path, lines in sorted(by_defect[defect].items()):
            out.append(f"    {path}:{ranges(lines)}")
        for sha in commits[defect]:
            subject = subjects.get(sha, "")
            out.append(f"    fixed by {sha[:12]} {subject}".rstrip())
            out.append(f"      see the original fix: git show {sha[:12]}")
    out.append("  (accept with care; skip once with DASCT_SKIP=1, see `dasct why PATH:LINE`)")
    return "\n".join(out) + "\n"


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _annotations(
    findings: Sequence[Finding], subjects: Mapping[str, str]
) -> list[tuple[str, int, str, str]]:
    """(path, line, title, message) per defect and file, placed in the new version."""
    grouped: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        grouped[(f.defect, f.after_path or f.path)].append(f)
    out = []
    for (defect, path), items in sorted(grouped.items()):
        first = min((f.after_line or 1) if f.after_path else 1 for f in items)
        fixes = ", ".join(
            f"{sha[:12]} {subjects.get(sha, '')}".strip()
            for sha in dict.fromkeys(f.commit for f in items)
        )
        old = items[0].path
        message = (
            f"This change rewrites lines {ranges(f.line for f in items)} of {old} that fixed "
            f"{defect} ({fixes}); QA will be asked to revalidate."
        )
        out.append((path, first, f"Touches {defect}", message))
    return out


def findings_github(findings: Sequence[Finding], subjects: Mapping[str, str]) -> str:
    """GitHub Actions workflow commands: one warning annotation per defect and file."""
    lines = [
        f"::warning file={_escape(path, True)},line={line},"
        f"title={_escape(title, True)}::{_escape(message)}"
        for path, line, title, message in _annotations(findings, subjects)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def findings_sarif(findings: Sequence[Finding], subjects: Mapping[str, str]) -> str:
    """SARIF 2.1.0 for code-scanning uploads: one result per defect and file."""
    import json

    from dasct import __version__

    results = [
        {
            "ruleId": "dasct/protected-line",
            "level": "warning",
            "message": {"text": message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": path},
                "region": {"startLine": line},
            }}],
            "partialFingerprints": {"dasct/defect-path": f"{title}:{path}"},
        }
        for path, line, title, message in _annotations(findings, subjects)
    ]
    rule = {
        "id": "dasct/protected-line",
        "name": "ProtectedLineTouched",
        "shortDescription": {"text": "A change rewrites lines that fixed a defect"},
        "help": {"text": "The lines were written or accepted as the fix of a defect; "
                         "`dasct why PATH:LINE` shows the fix. See docs/protected-lines.md."},
    }
    return json.dumps({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "dasct", "version": __version__,
                                      "rules": [rule]}},
                  "results": results}],
    }, indent=2) + "\n"


def lines_json(lines: Iterable[tuple[str, int, Sequence[str]]]) -> str:
    """{"lines": [{"path", "line", "defects"}]}: the protected lines of `dasct scan`."""
    import json

    return json.dumps(
        {"lines": [{"path": p, "line": n, "defects": list(d)} for p, n, d in lines]},
        indent=2, ensure_ascii=False,
    )
