"""The few settings the commit-time path needs, cached per configuration file state.

Validating the configuration means tomllib and the dataclass schema of config.py (about
10 ms of imports); a commit pays for that only when `.dasct.toml` or `pyproject.toml`
changed since the last run. The cache lives in the git dir, is keyed by the files' stat
data and checked like every cache file (cache.py); config.py stays the only place that
reads and validates configuration.
"""

from __future__ import annotations

import os

from dasct import __version__, cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any

    from dasct.git import Repo

CONFIG_FILES = (".dasct.toml", "pyproject.toml")
DEFAULT_BUDGET = 5.0  # seconds: [check] budget_seconds (config.CheckConfig)
KIND = b"st"  # cache.py file kind of the settings cache
# 1: bare marshal, no header; 2: no kinds, ignore_commits, max_lines_per_commit; 3: no ledger
FORMAT = 4


class Settings:
    """Exclude globs, strict mode, the time budget, the defect patterns and what is not
    linked or not reported, as config.py validated them."""

    __slots__ = ("_compiled", "budget", "exclude", "ignore_commits", "kinds", "ledger",
                 "max_lines_per_commit", "patterns", "source", "strict")

    def __init__(
        self, *, exclude: tuple[str, ...], strict: bool, patterns: tuple[str, ...], source: str,
        budget: float = DEFAULT_BUDGET, kinds: tuple[str, ...] = ("code",),
        ignore_commits: tuple[str, ...] = (), max_lines_per_commit: int = 0,
        ledger: tuple[str, str] = ("dasct-ledger", "origin"),
    ) -> None:
        self.exclude = exclude
        self.strict = strict
        self.patterns = patterns
        self.source = source
        self.budget = budget  # seconds the commit-time check may take ([check] budget_seconds)
        self.kinds = kinds  # the kinds of touched lines reported ([check] kinds)
        # Fix commits that link nothing ([defects] ignore_commits, lower-case hex prefixes)
        # and the size above which a fix commit links nothing (0: no limit).
        self.ignore_commits = ignore_commits
        self.max_lines_per_commit = max_lines_per_commit
        self.ledger = tuple(ledger)  # ([qa] ledger_branch, ledger_remote): the index's links
        self._compiled: tuple[re.Pattern[str], ...] | None = None

    @property
    def links_fingerprint(self) -> str:
        """Changes exactly when what links a commit changes: the defect patterns, the
        ignored commits, the size limit (the index relinks then)."""
        import zlib

        key: object = self.patterns  # without the new settings, as before: no relink
        if self.ignore_commits or self.max_lines_per_commit:
            key = (self.patterns, self.ignore_commits, self.max_lines_per_commit)
        return f"{zlib.crc32(repr(key).encode()):08x}"

    def ignored(self, sha: str) -> bool:
        """Whether sha is one of `[defects] ignore_commits` (full or abbreviated)."""
        return any(sha.startswith(prefix) for prefix in self.ignore_commits)

    def compiled(self) -> tuple[re.Pattern[str], ...]:
        """The defect patterns, compiled once."""
        if self._compiled is None:
            import re

            self._compiled = tuple(re.compile(p) for p in self.patterns)
        return self._compiled

    def excluded(self, path: str) -> bool:
        """Whether path matches an exclude glob ([paths] exclude); see matches_glob."""
        return matches_glob(path, self.exclude)


def matches_glob(path: str, globs: tuple[str, ...]) -> bool:
    """Whether a repo-relative posix path matches one of the exclude globs.

    A glob without "/" matches the file name in any directory; one with "/" matches
    the whole path from the repository root ("*" crosses directories there).
    """
    import fnmatch

    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path if "/" in glob else name, glob) for glob in globs)


def _stat_key(root: str) -> list[object]:
    key: list[object] = [__version__]
    for name in CONFIG_FILES:
        try:
            st = os.stat(os.path.join(root, name))
            key.append((name, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
        except OSError:
            key.append((name, None))
    return key


# The cached values and their types: anything else in the file is not believed.
_SHAPES: dict[str, type] = {
    "exclude": tuple, "strict": bool, "patterns": tuple, "source": str, "budget": float,
    "kinds": tuple, "ignore_commits": tuple, "max_lines_per_commit": int, "ledger": tuple,
}
_TEXTS = ("exclude", "patterns", "kinds", "ignore_commits", "ledger")  # tuples of str


def _cached(path: str, key: list[object]) -> Settings | None:
    """The cached settings when they are for exactly this state of the config files."""
    try:
        stored = cache.read(path, KIND, FORMAT)
    except OSError:
        return None
    except cache.Damaged as exc:
        cache.discard(path, str(exc))
        return None
    values = stored.get("values") if isinstance(stored, dict) else None
    if (
        not isinstance(stored, dict)
        or not isinstance(values, dict)
        or set(values) != set(_SHAPES)
        or any(type(values[k]) is not t for k, t in _SHAPES.items())
        or not all(type(x) is str for k in _TEXTS for x in values[k])
    ):
        cache.discard(path, "unexpected contents")
        return None
    if stored.get("key") != key or len(values["ledger"]) != 2:
        return None  # a config file changed: validate it again
    return Settings(**values)


def load(repo: Repo) -> Settings:
    """The settings of repo: from the cache when the config files did not change."""
    path = os.path.join(str(repo.state_dir), "settings.cache")
    key = _stat_key(str(repo.root))
    found = _cached(path, key)
    if found is not None:
        return found
    from dasct import config

    cfg = config.load(repo.root)
    values: dict[str, Any] = {
        "exclude": cfg.paths.exclude,
        "strict": cfg.check.strict,
        "patterns": cfg.defects.pattern_strings(),
        "source": cfg.source,
        "budget": float(cfg.check.budget_seconds),
        "kinds": cfg.check.kinds,
        "ignore_commits": tuple(sha.lower() for sha in cfg.defects.ignore_commits),
        "max_lines_per_commit": cfg.defects.max_lines_per_commit,
        "ledger": (cfg.qa.ledger_branch, cfg.qa.ledger_remote),
    }
    cache.write(path, {"key": key, "values": values}, KIND, FORMAT)
    return Settings(**values)
