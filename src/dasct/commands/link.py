"""`dasct link DEFECT PATH:START-END` and `dasct unlink ...`: manual links in the ledger.

A link names lines as `git blame -w` sees them at a commit (HEAD by default): the ledger
records, per commit that owns some of them, that commit's path and line numbers, so the
index protects exactly those lines wherever blame carries them (linklines.py). Unlinking
removes a defect from lines the same way, whether a fix commit, an accepted touch or a
manual link put it there.
"""

from __future__ import annotations

import argparse

from dasct import config, git, redact, render
from dasct.errors import DasctError
from dasct.ledger_record import Record
from dasct.refs import valid_key
from dasct.replay import IGNORE_REVS_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("defect", help="a defect key, e.g. PROJ-7 or '#12' (quoted)")
    parser.add_argument("location", metavar="PATH:START[-END]",
                        help="lines of a file at the commit (1-based, inclusive)")
    parser.add_argument("--commit", default="HEAD", metavar="REV",
                        help="the commit whose lines are meant (default HEAD)")
    parser.add_argument("--no-push", action="store_true",
                        help="keep the record in the local ledger (CI pushes it later)")


def run(args: argparse.Namespace) -> int:
    path, sep, span = args.location.rpartition(":")
    first, _, last = span.partition("-")
    if not sep or not path or not first.isdigit() or (last and not last.isdigit()):
        raise DasctError(f"expected PATH:START-END, got {args.location!r}")
    start, end = int(first), int(last or first)
    if not 1 <= start <= end:
        raise DasctError(f"{args.location}: the lines must be 1 <= START <= END")
    return main(defect=args.defect, path=path, start=start, end=end, rev=args.commit,
                unlink=args.command == "unlink", push=not args.no_push)


def owners(repo: git.Repo, rev: str, path: str, start: int, end: int
           ) -> dict[tuple[str, str], list[int]]:
    """Lines start..end of path at rev by the commit blame names and the path and line
    numbers there: {(commit, path at commit): [lines]}."""
    args = ["-c", "blame.ignoreRevsFile=", "blame", "-w", "--line-porcelain",
            "-L", f"{start},{end}"]
    if (repo.root / IGNORE_REVS_FILE).exists():
        args += ["--ignore-revs-file", str(repo.root / IGNORE_REVS_FILE)]
    code, out = git.run_code(*args, rev, "--", path, cwd=repo.root)
    if code != 0:
        raise DasctError(f"{path}:{start}-{end}: no such file or lines at {rev[:12]}")
    found: dict[tuple[str, str], list[int]] = {}
    sha, line = "", 0
    for text in out.decode("utf-8", "surrogateescape").split("\n"):
        parts = text.split(" ")
        if len(parts) >= 3 and len(parts[0]) in (40, 64) and parts[1].isdigit():
            sha, line = parts[0], int(parts[1])
        elif text.startswith("filename "):
            found.setdefault((sha, text[9:]), []).append(line)
    got = sum(len(lines) for lines in found.values())
    if got != end - start + 1:  # git clamps a range past the end of the file
        raise DasctError(f"{path}:{start}-{end}: {path} has {start + got - 1} lines at "
                         f"{rev[:12]}")
    return found


def main(*, defect: str, path: str, start: int, end: int, rev: str, unlink: bool,
         push: bool) -> int:
    """Write one link (or unlink) record per commit owning some of the lines."""
    from dasct import qa

    if not valid_key(defect):
        raise DasctError(f"not a defect key: {defect!r}")
    repo = git.discover()
    cfg = config.load(repo.root)
    redact.configure(cfg)
    rel = git.repo_path(repo, path)
    sha = git.rev_parse(repo, rev)
    found = owners(repo, sha, rel, start, end)
    boundary = repo.shallow_boundary()
    beyond = [c for c, _ in found if c in boundary]
    if beyond:
        raise DasctError(f"{rel}:{start}-{end}: some lines come from beyond the shallow "
                         "boundary (their commit is unknown here); fetch the full history")
    kind = "unlink" if unlink else "link"
    asked = f"{rel}:{start}-{end} at {sha[:12]}"
    records = [Record(kind, {"defect": defect, "commit": commit, "path": where,
                             "lines": [[a, b] for a, b in _spans(sorted(lines))],
                             "asked": asked})
               for (commit, where), lines in sorted(found.items())]
    book = qa.ledger_of(repo, cfg)
    book.append(records)
    if push and book.remote:
        book.push()
    from dasct import refresh

    refresh.in_background(repo)  # the commit-time check reads the index as it is
    count = end - start + 1
    verb = "unlinked from" if unlink else "linked to"
    print(f"dasct: {render.quote_path(rel)}:{render.ranges(range(start, end + 1))} "
          f"{verb} {render.printable(defect)} ({render.plural(count, 'line')}, owned by "
          f"{render.plural(len({c for c, _ in found}), 'commit')}); the index catches up "
          "in the background")
    return 0


def _spans(lines: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in lines:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out
