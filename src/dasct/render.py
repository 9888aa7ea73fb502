"""Output formats for findings and protected lines: text for people, JSON and CI for tools.

The JSON field names are a contract (see docs/cli.md); fields may be added, never renamed.
Text output shows file names with quote_path and commit subjects with printable, so that
a newline or a terminal escape in a name cannot forge or hide a line.
"""

from __future__ import annotations

from collections import defaultdict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dasct.check import Finding, Protected


# git's C-style escapes (quote.c); every other byte to escape is written in octal.
_C_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
              34: '\\"', 92: "\\\\"}


def _escaped(raw: bytes) -> str:
    return "".join(
        _C_ESCAPES.get(b) or (chr(b) if 0x20 <= b < 0x7F else f"\\{b:03o}") for b in raw
    )


def quote_path(path: str) -> str:
    """path as git shows it by default (core.quotePath=true): unchanged when it is plain
    ASCII, else in double quotes with C escapes for control characters, `"` and `\\`, and
    every byte of a non-ASCII character in octal (`"caf\\303\\251.txt"`)."""
    raw = path.encode("utf-8", "surrogateescape")
    if all(0x20 <= b < 0x7F and b not in (34, 92) for b in raw):
        return path
    return f'"{_escaped(raw)}"'


def printable(text: str) -> str:
    """A commit subject for a terminal: its text, with each non-printable character
    (control, formatting, line separators) as the C escapes of its UTF-8 bytes."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else _escaped(c.encode("utf-8", "surrogateescape")) for c in text
    )


def plural(count: int, noun: str) -> str:
    """1 -> '1 fix commit', 2 -> '2 fix commits'."""
    return f"{count} {noun}{'s' * (count != 1)}"


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


def findings_json(findings: Sequence[Finding], not_reported: int = 0) -> str:
    """{"findings": [{"defect", "path", "line", "commit", "after_path", "after_line",
    "kind"}], "not_reported": N}: N findings of kinds not reported were left out."""
    import json

    return json.dumps(
        {"findings": [f.as_dict() for f in findings], "not_reported": not_reported},
        indent=2, ensure_ascii=False,
    )


def shell_word(text: str) -> str:
    """text as one word of a shell command: quoted unless it is plain (a `#12` key is
    otherwise a comment to the shell)."""
    if text and all(c.isalnum() or c in "-_./:" for c in text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def findings_text(
    findings: Sequence[Finding], subjects: Mapping[str, str], label: str, strict: bool,
    note: str = "",
) -> str:
    """Each defect once, its touched lines grouped into ranges, and where it was fixed."""
    if not findings:
        return ""
    by_defect: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    commits: dict[str, dict[str, bool]] = defaultdict(dict)
    for f in findings:
        by_defect[f.defect][f.path].append(f.line)
        commits[f.defect][f.commit] = commits[f.defect].get(f.commit, False) or f.ledger
    verdict = "the commit is blocked (strict mode)" if strict else "the commit goes on"
    head = (
        f"dasct: {label}: lines that fixed {plural(len(by_defect), 'defect')} are changed; "
        f"{verdict}."
    )
    out = [head]
    for defect in sorted(by_defect):
        out.append(f"  {printable(defect)}")
        for path, lines in sorted(by_defect[defect].items()):
            out.append(f"    {quote_path(path)}:{ranges(lines)}")
        for sha, ledger in commits[defect].items():
            subject = printable(subjects.get(sha, ""))
            if ledger:  # an accepted touch or a manual link: the baseline, not a fix
                out.append(f"    linked in the ledger at {sha[:12]} {subject}".rstrip())
                out.append(f"      see why: dasct show {shell_word(defect)}")
            else:
                out.append(f"    fixed by {sha[:12]} {subject}".rstrip())
                out.append(f"      see the original fix: git show {sha[:12]}")
    if note:
        out.append(f"  {note}")
    out.append("  (line numbers are those before the change; accept with care; skip once with "
               "DASCT_SKIP=1; see `dasct why PATH:LINE`)")
    return "\n".join(out) + "\n"


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def annotations_of(
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
        # The annotation sits in the new version; the numbers in its text are the base's,
        # as in the text output and the JSON `line`: say which is which.
        numbers = {f.line for f in items}
        one = len(numbers) == 1
        if not items[0].after_path:
            after = "the change deletes the file"
        else:
            after = f"{'' if one else 'from '}line {first} after the change"
        message = (
            f"{'Line' if one else 'Lines'} {ranges(numbers)} of {items[0].path} before this "
            f"change ({after}) fixed {defect} ({fixes}); this change rewrites or removes "
            f"{'it' if one else 'them'}."
        )
        out.append((path, first, f"Touches {defect}", message))
    return out


def findings_github(findings: Sequence[Finding], subjects: Mapping[str, str]) -> str:
    """GitHub Actions workflow commands: one warning annotation per defect and file."""
    lines = [
        f"::warning file={_escape(path, True)},line={line},"
        f"title={_escape(title, True)}::{_escape(message)}"
        for path, line, title, message in annotations_of(findings, subjects)
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def findings_sarif(findings: Sequence[Finding], subjects: Mapping[str, str]) -> str:
    """SARIF 2.1.0 for code-scanning uploads: one result per defect and file."""
    import json
    from urllib.parse import quote

    from dasct import __version__

    results = [
        {
            "ruleId": "dasct/protected-line",
            "level": "warning",
            "message": {"text": message},
            "locations": [{"physicalLocation": {
                # A relative URI reference (RFC 3986): percent-encoded UTF-8, "/" kept.
                "artifactLocation": {"uri": quote(path.encode("utf-8", "surrogateescape"),
                                                  safe="/")},
                "region": {"startLine": line},
            }}],
            "partialFingerprints": {"dasct/defect-path": f"{title}:{path}"},
        }
        for path, line, title, message in annotations_of(findings, subjects)
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


def lines_json(lines: Iterable[tuple[Protected, str]]) -> str:
    """{"lines": [{"path", "line", "defects", "kind", "commit", "ledger"}]}: the protected
    lines of `dasct scan` (ledger: the defects the ledger linked the line to, not its
    commit's message)."""
    import json

    return json.dumps(
        {"lines": [{"path": x.path, "line": x.line, "defects": list(x.defects), "kind": k,
                    "commit": x.commit, "ledger": list(x.ledger)}
                   for x, k in lines]},
        indent=2, ensure_ascii=False,
    )
