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


def _zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("__main__.py", _EPOCH), _MAIN)
        for package in PACKAGES:
            for arcname, path in _sources(package):
                info = zipfile.ZipInfo(arcname, _EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())
    return out.getvalue()


def build(home: Path) -> Bundle:
    """The runtime of the running dasct, built (or found) in home/remote/runtime."""
    data = _zip_bytes()
    digest = hashlib.sha256(data).hexdigest()
    bundle = Bundle(home / "remote" / "runtime" / f"dasct-{digest[:16]}.pyz", digest)
    if not bundle.path.is_file():
        durable.atomic_write(bundle.path, data, mode=0o644)
    return bundle
