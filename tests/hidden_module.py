"""A child process in which an optional dependency cannot be imported: what a user who did
not install the extra sees (the tests' own venv has every extra)."""

from __future__ import annotations

from pathlib import Path

_SITE = '''import sys


class _Hidden:
    """{module} is not installed, as far as this process can tell."""

    def find_spec(self, name, path=None, target=None):
        if name == "{module}" or name.startswith("{module}."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Hidden())
'''


def hiding(module: str, folder: Path) -> Path:
    """A directory whose sitecustomize hides module; put it first on a child's PYTHONPATH."""
    site = folder / f"site-without-{module}"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITE.format(module=module))
    return site
