"""The runtime shipped to a target: this very dasct as one zipapp, with its pure-Python
dependencies.

A remote environment runs the same engine as a local one, on the target host, by running
dasct there (as Ansible ships its modules): nothing has to be installed on the target but
Python 3.10 or newer. The zipapp is built from the installed packages (dasct, sqlglot, and
tomli where it is present), named by the SHA-256 of its content, cached under
`.dasct/remote/runtime/`, and uploaded once per version (dasct.remote.runner).

A PostgreSQL target database needs psycopg on the target (a compiled package cannot run
from a zip): docs/remote.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dasct import durable

# Pure-Python packages the engine imports; tomli only exists for Python 3.10.
PACKAGES = ("dasct", "sqlglot", "tomli")
_MAIN = b'''import sys
if sys.version_info < (3, 10):
    sys.exit("dasct: the target needs Python 3.10 or newer, not %d.%d" % sys.version_info[:2])
from dasct.cli import entry
entry()
'''
# A fixed time stamp for every member: the same sources give the same zip, byte for byte.
_EPOCH = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    """A built runtime: its local file and the name it takes on a target."""

    path: Path
    digest: str

    @property
    def name(self) -> str:
        """The file name on the target: content-addressed, so versions never collide."""
        return f"dasct-{self.digest[:16]}.pyz"


def _sources(package: str) -> list[tuple[str, Path]]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    top = Path(next(iter(spec.submodule_search_locations)))
    found = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".typed")) or "/hooks" in folder:
                full = Path(folder) / name
                found.append((f"{package}/{full.relative_to(top).as_posix()}", full))
    return found


def _pyc(source: bytes, arcname: str) -> bytes | None:
    """Unchecked hash-based bytecode of source, for this interpreter.

    A target whose Python has another bytecode version ignores it (wrong magic) and
    compiles the source beside it, as zipimport does; one with the same version skips the
    compile that otherwise costs every run a few hundred milliseconds.
    """
    try:
        code = compile(source, arcname, "exec", dont_inherit=True)
    except SyntaxError:
        return None
    return bytes(importlib._bootstrap_external._code_to_hash_pyc(  # type: ignore[attr-defined]
        code, importlib.util.source_hash(source), checked=False))


def _zip_bytes(sources: list[tuple[str, Path]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("__main__.py", _EPOCH), _MAIN)
        for arcname, path in sources:
            data = path.read_bytes()
            members = [(arcname, data)]
            if arcname.endswith(".py") and (pyc := _pyc(data, arcname)) is not None:
                members.append((arcname + "c", pyc))
            for name, content in members:
                info = zipfile.ZipInfo(name, _EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, content)
    return out.getvalue()


def build(home: Path) -> Bundle:
    """The runtime of the running dasct, built (or found) in home/remote/runtime.

    A stamp named by the sources' names, sizes and modification times remembers which
    zip they gave, so an unchanged installation only stats its files.
    """
    sources = [item for package in PACKAGES for item in _sources(package)]
    listing = "\n".join(f"{name} {p.stat().st_size} {p.stat().st_mtime_ns}"
                         for name, p in sources)
    stamp_key = hashlib.sha256(f"{sys.version}\n{listing}".encode()).hexdigest()[:24]
    folder = home / "remote" / "runtime"
    stamp = folder / f"stamp-{stamp_key}"
    try:
        digest = stamp.read_text().strip()
        known = Bundle(folder / f"dasct-{digest[:16]}.pyz", digest)
        if len(digest) == 64 and known.path.is_file():
            return known
    except OSError:
        pass
    data = _zip_bytes(sources)
    digest = hashlib.sha256(data).hexdigest()
    bundle = Bundle(folder / f"dasct-{digest[:16]}.pyz", digest)
    if not bundle.path.is_file():
        durable.atomic_write(bundle.path, data, mode=0o644)
    durable.atomic_write(stamp, digest.encode(), mode=0o644)
    return bundle
