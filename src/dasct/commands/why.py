"""`dasct why PATH:LINE`: which defects protect a line, through which commit, with its hunk
(the line marked in it) and what kind of line it is."""

from __future__ import annotations

import argparse
import json

from dasct import git, index, kinds, render, settings
from dasct.errors import DasctError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("location", metavar="PATH:LINE", help="a line of a file at HEAD")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    path, sep, line = args.location.rpartition(":")
    if not sep or not line.isdigit() or int(line) < 1:
        raise DasctError(f"expected PATH:LINE, got {args.location!r}")
    return main(path=path, line=int(line), fmt=args.format)


def hunk_of(repo: git.Repo, sha: str, path: str, line: int) -> tuple[str, int | None]:
    """The hunk of commit sha that wrote what is line `line` of path at HEAD, and the
    index in it of the diff line that wrote it (None: not found)."""
    args = ["-c", "blame.ignoreRevsFile=", "blame", "-w", "--porcelain", "-L", f"{line},{line}"]
    ignore = repo.root / index.IGNORE_REVS_FILE
    if ignore.exists():
        args += ["--ignore-revs-file", str(ignore)]
    out = git.run(*args, "HEAD", "--", path, cwd=repo.root).decode("utf-8", "replace")
    first = out.split("\n", 1)[0].split(" ")
    orig_line = int(first[1])
    orig_path = next(
        (x[9:] for x in out.splitlines() if x.startswith("filename ")), path
    )
    patch = git.run(
        "show", "--format=", "-U3", "-w", "--no-color", "--no-ext-diff", "--no-textconv", sha,
        "--", orig_path,
        cwd=repo.root,
    ).decode("utf-8", "replace")
    hunk: list[str] = []
    for text in patch.splitlines():
        if text.startswith("@@"):
            if hunk and _contains(hunk[0], orig_line):
                break
            hunk = [text]
        elif hunk:
            hunk.append(text)
    if not hunk or not _contains(hunk[0], orig_line):
        return "", None
    return "\n".join(hunk), _written_at(hunk, orig_line)


def _new_side(header: str) -> tuple[int, int]:
    start, _, count = header.split(" ")[2][1:].partition(",")
    return int(start), int(count) if count else 1


def _contains(header: str, line: int) -> bool:
    start, count = _new_side(header)
    return start <= line < start + count


def _written_at(hunk: list[str], line: int) -> int | None:
    """The index in hunk of the `+` or context line that is new-side line `line`."""
    n = _new_side(hunk[0])[0]
    for i, text in enumerate(hunk[1:], 1):
        if text.startswith("\\"):  # "\ No newline at end of file"
            continue
        if not text.startswith("-"):
            if n == line:
                return i
            n += 1
    return None


def _origin(snap: index.Snapshot, origin: int, defects: tuple[str, ...]) -> str:
    """How the line came to protect its defects: its commit names them ("fix commit"), or
    the ledger linked it (an accepted touch or a manual link: linklines.py)."""
    added = [d for d in snap.ledger_linked(origin) if d in defects]
    return f"linked in the ledger to {', '.join(added)}" if added else "fix commit"


def main(*, path: str, line: int, fmt: str) -> int:
    """Explain one line; exit 1 when no defect protects it."""
    repo = git.discover()
    cfg = settings.load(repo)
    rel = git.repo_path(repo, path)
    snap = index.snapshot_at(repo, cfg, repo.head)
    origins = snap.origins(rel)
    if line > len(origins):
        raise DasctError(f"{render.quote_path(rel)} has no line {line} at HEAD")
    origin = origins[line - 1]
    sha = snap.sha(origin)
    defects = () if cfg.excluded(rel) else snap.links.get(origin, ())
    subject = git.subjects(repo, [sha]).get(sha, "")
    hunk, at = hunk_of(repo, sha, rel, line) if defects else ("", None)
    blob = git.cat_blobs(repo.root, [f"HEAD:{rel}"])[f"HEAD:{rel}"]
    kind = kinds.classify(rel, blob, [line])[line]
    hunk_lines = hunk.splitlines()
    origin_of = _origin(snap, origin, defects)
    if fmt == "json":
        print(json.dumps({"path": rel, "line": line, "commit": sha, "subject": subject,
                          "defects": list(defects), "origin": origin_of,
                          "kind": kind, "hunk": hunk,
                          "hunk_line": None if at is None else hunk_lines[at]}, indent=2))
    elif defects:
        where = f"{render.quote_path(rel)}:{line}"
        article = "an" if kind[0] in "aeiou" else "a"
        print(f"{where} protects {', '.join(render.printable(d) for d in defects)} "
              f"({article} {kind} line)")
        print(f"  through {sha[:12]} {render.printable(subject)}"
              + ("" if origin_of == "fix commit" else f" ({origin_of})"))
        # The line asked about is marked with ">" in the hunk that wrote it.
        print("\n".join(("> " if i == at else "  ") + x for i, x in enumerate(hunk_lines)))
    else:
        print(f"{render.quote_path(rel)}:{line} protects no defect (last changed by "
              f"{sha[:12]} {render.printable(subject)})")
    return 0 if defects else 1
