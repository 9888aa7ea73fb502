"""`dasct install` / `dasct uninstall`: plain git hooks that call dasct.

pre-commit runs the check; post-checkout, post-merge, post-rewrite and post-commit keep
the index at HEAD in the background (dasct.refresh), and install builds it right away, so
that no commit waits for a build. The hooks directory is git's own answer (`git rev-parse
--git-path hooks`), so core.hooksPath is honoured. A hook already there is kept beside
ours as `<name>.dasct-chained` and run first; uninstall puts it back.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from dasct import durable, git
from dasct.errors import DasctError

# hook name -> the shim template under dasct/hooks/ (@HOOK@ becomes the hook's name)
HOOKS = {
    "pre-commit": "pre-commit",
    "post-checkout": "refresh",
    "post-merge": "refresh",
    "post-rewrite": "refresh",
    "post-commit": "refresh",
}
MARKER = "DASCT-SHIM"
CHAINED = ".dasct-chained"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    if parser.prog.endswith("install") and not parser.prog.endswith("uninstall"):
        parser.add_argument("--no-index", action="store_true",
                            help="do not build the index now (the first commit will)")


def run(args: argparse.Namespace) -> int:
    if args.command == "uninstall":
        return uninstall(quiet=args.quiet)
    return install(quiet=args.quiet, build=not args.no_index)


def hooks_dir(repo: git.Repo) -> Path:
    """Where git looks for hooks in this repository (core.hooksPath honoured)."""
    out = git.run("rev-parse", "--git-path", "hooks", cwd=repo.root).decode().strip()
    path = Path(out)
    return path if path.is_absolute() else repo.root / path


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install(*, quiet: bool, build: bool = True) -> int:
    """Write the shims, keeping any foreign hook as the chained one; build the index."""
    repo = git.discover()
    directory = hooks_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in HOOKS.items():
        template = resources.files("dasct").joinpath("hooks", source).read_text()
        text = (template.replace("@PYTHON@", sys.executable.replace("'", "'\\''"))
                .replace("@HOOK@", name))
        path = directory / name
        if path.exists() and not _ours(path):
            chained = directory / (name + CHAINED)
            if chained.exists():
                raise DasctError(f"{chained} already exists; move it away and retry")
            os.replace(path, chained)
            if not quiet:
                print(f"dasct: kept the existing {name} hook as {chained.name}; it runs first")
        durable.atomic_write(path, text.encode(), mode=0o755)
        if not quiet:
            print(f"dasct: installed {path}")
    if build and repo.head is not None:
        # Now, with progress, rather than inside the first commit.
        from dasct.commands import index

        try:
            return index.main(rebuild=False, quiet=quiet, fmt="text")
        except DasctError as exc:
            raise DasctError(f"the hooks are installed, but the index was not built: {exc}"
                             ) from None
    return 0


def uninstall(*, quiet: bool) -> int:
    """Remove the shims and restore the hooks they chained."""
    repo = git.discover()
    directory = hooks_dir(repo)
    for name in HOOKS:
        path = directory / name
        chained = directory / (name + CHAINED)
        if path.exists() and _ours(path):
            path.unlink()
            if not quiet:
                print(f"dasct: removed {path}")
        if chained.exists() and not path.exists():
            os.replace(chained, path)
            if not quiet:
                print(f"dasct: restored the previous {name} hook")
    return 0
