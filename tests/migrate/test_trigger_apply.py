"""Property test: a trigger built from A..B turns a copy of tree A into tree B.

The engine's file steps are part B's; this applies the file changes naively, to check
that create() records every change with the right pre-images, payloads and modes.
"""

from __future__ import annotations

import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dasct.config import DefectsConfig, MigrateConfig
from dasct.migrate import trigger as t
from dasct.migrate import trigger_check as trigc
from dasct.migrate.create import create
from gitrepo import GitRepo

NAMES = ("a.txt", "b.txt", "src/c.py", "src/d.py", "src/deep/e.sh", "f")
LONG = "".join(f"shared line {i}\n" for i in range(30))
contents = st.one_of(st.text(max_size=40), st.builds(lambda s: LONG + s, st.text(max_size=5)))
tree = st.dictionaries(st.sampled_from(NAMES), st.tuples(contents, st.booleans()), max_size=6)


def materialize(root: Path, files: dict[str, tuple[str, bool]]) -> None:
    for name in NAMES:
        (root / name).unlink(missing_ok=True)
    for name, (text, exe) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        path.chmod(0o755 if exe else 0o644)


def snapshot(root: Path) -> dict[str, tuple[bytes, bool]]:
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] == ".git" or not path.is_file():
            continue
        out[rel] = (path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return out


def apply(trig: t.Trigger, root: Path) -> None:
    """Deletes and rename sources first, then writes: the naive order of a file step."""
    for change in trig.files:
        if change.op in ("delete", "rename"):
            (root / (change.old_path or change.path)).unlink()
    for change in trig.files:
        if change.post_sha256 is not None:
            path = root / change.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(trigc.read_payload(trig.staging, change.post_sha256))
            path.chmod(change.mode)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=tree, after=tree, rename=st.booleans())
def test_trigger_turns_tree_a_into_tree_b(
    before: dict[str, tuple[str, bool]], after: dict[str, tuple[str, bool]], rename: bool
) -> None:
    with tempfile.TemporaryDirectory() as where:
        # Git identity and config come from tests/conftest.py, as in every test.
        repo, target = GitRepo(Path(where) / "repo"), Path(where) / "target"
        materialize(repo.path, before)
        base = repo.commit("A")
        if rename and "a.txt" in before and "b.txt" not in after:
            after = {**after, "b.txt": before["a.txt"]}
            after.pop("a.txt", None)
        materialize(repo.path, after)
        head = repo.commit("B")

        target.mkdir()
        materialize(target, before)
        trig = create(
            repo_root=repo.path, rev_range=f"{base}..{head}", environment="model",
            staging=Path(where) / "staging",
            migrate=MigrateConfig(system="app", sql_dir="db", expiry_hours=1),
            defect_patterns=DefectsConfig().compiled(),
            at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        )
        for change in trig.files:
            event(change.op)
        trigc.check_target(trig, target)
        apply(trig, target)
        assert snapshot(target) == snapshot(repo.path)
