"""`dasct why PATH:LINE`: which defects protect a line, through which commit, with its hunk."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from dasct import git, index, render, settings
from dasct.errors import DasctError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("location", metavar="PATH:LINE", help="a line of a file at HEAD")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    path, sep, line = args.location.rpartition(":")
    if not sep or not line.isdigit() or int(line) < 1:
        raise DasctError(f"expected PATH:LINE, got {args.location!r}")
    return main(path=path, line=int(line), fmt=args.format)


def _repo_path(repo: git.Repo, path: str) -> str:
    full = Path(os.path.abspath(path))
    try:
        return full.relative_to(repo.root.resolve()).as_posix()
    except ValueError:
        return path


def hunk_of(repo: git.Repo, sha: str, path: str, line: int) -> str:
    """The hunk of commit sha that wrote what is line `line` of path at HEAD."""
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
    return "\n".join(hunk) if hunk and _contains(hunk[0], orig_line) else ""


def _contains(header: str, line: int) -> bool:
    new = header.split(" ")[2][1:]
    start, _, count = new.partition(",")
    return int(start) <= line < int(start) + (int(count) if count else 1)


def main(*, path: str, line: int, fmt: str) -> int:
    """Explain one line; exit 1 when no defect protects it."""
    repo = git.discover()
    cfg = settings.load(repo)
    rel = _repo_path(repo, path)
    snap = index.snapshot_at(repo, cfg, repo.head)
    origins = snap.origins(rel)
    if line > len(origins):
        raise DasctError(f"{render.quote_path(rel)} has no line {line} at HEAD")
    origin = origins[line - 1]
    sha = snap.sha(origin)
    defects = () if cfg.excluded(rel) else snap.links.get(origin, ())
    subject = git.subjects(repo, [sha]).get(sha, "")
    hunk = hunk_of(repo, sha, rel, line) if defects else ""
    if fmt == "json":
        print(json.dumps({"path": rel, "line": line, "commit": sha, "subject": subject,
                          "defects": list(defects), "hunk": hunk}, indent=2))
    elif defects:
        where = f"{render.quote_path(rel)}:{line}"
        print(f"{where} protects {', '.join(render.printable(d) for d in defects)}")
        print(f"  through {sha[:12]} {render.printable(subject)}")
        print("\n".join("  " + x for x in hunk.splitlines()))
    else:
        print(f"{render.quote_path(rel)}:{line} protects no defect (last changed by "
              f"{sha[:12]} {render.printable(subject)})")
    return 0 if defects else 1
