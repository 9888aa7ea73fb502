"""The few settings the commit-time path needs, cached per configuration file state.

Validating the configuration means tomllib and the dataclass schema of config.py (about
10 ms of imports); a commit pays for that only when `.dasct.toml` or `pyproject.toml`
changed since the last run. The cache lives in the git dir and is keyed by the files'
stat data; config.py stays the only place that reads and validates configuration.
"""

from __future__ import annotations

import marshal
import os

from dasct import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any

    from dasct.git import Repo

CONFIG_FILES = (".dasct.toml", "pyproject.toml")


class Settings:
    """Exclude globs, strict mode and defect patterns, as config.py validated them."""

    __slots__ = ("_compiled", "exclude", "patterns", "source", "strict")

    def __init__(
        self, *, exclude: tuple[str, ...], strict: bool, patterns: tuple[str, ...], source: str
    ) -> None:
        self.exclude = exclude
        self.strict = strict
        self.patterns = patterns
        self.source = source
        self._compiled: tuple[re.Pattern[str], ...] | None = None

    @property
    def links_fingerprint(self) -> str:
        """Changes exactly when the defect patterns change (the index relinks then)."""
        import zlib

        return f"{zlib.crc32(repr(self.patterns).encode()):08x}"

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


def load(repo: Repo) -> Settings:
    """The settings of repo: from the cache when the config files did not change."""
    root = str(repo.root)
    cache = os.path.join(str(repo.state_dir), "settings.cache")
    key = _stat_key(root)
    try:
        with open(cache, "rb") as f:
            stored = marshal.load(f)
        if stored["key"] == key:
            return Settings(**stored["values"])
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        pass
    from dasct import config

    cfg = config.load(repo.root)
    values: dict[str, Any] = {
        "exclude": cfg.paths.exclude,
        "strict": cfg.check.strict,
        "patterns": cfg.defects.pattern_strings(),
        "source": cfg.source,
    }
    # Atomic, not durable: a cache (see index._save for why no fsync).
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        tmp = f"{cache}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            marshal.dump({"key": key, "values": values}, f)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only git dir only costs the next run the validation again
    return Settings(**values)
