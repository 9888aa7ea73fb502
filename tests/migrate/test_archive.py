"""Property: whatever file operations a trigger makes, archive + rollback give back the
exact target (contents, modes, directories), and the archive holds only touched paths."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from engine_kit import make_env, snapshot, stage
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dasct.migrate import archive, steps

NAMES = st.sampled_from(["a", "b", "c", "d.txt", "e.py"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)
CONTENT = st.binary(max_size=64)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[dict[str, tuple[bytes, int]], list[tuple[str, ...]]]:
    existing: dict[str, tuple[bytes, int]] = {}
    for path in draw(st.lists(PATHS, max_size=6, unique=True)):
        # A path cannot be both a file and a directory.
        if any(p.startswith(path + "/") or path.startswith(p + "/") for p in existing):
            continue
        existing[path] = (draw(CONTENT), draw(st.sampled_from([0o644, 0o755])))
    ops: list[tuple[str, ...]] = []
    used: set[str] = set()
    files = sorted(existing)
    for path in files:
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["modify", "delete", "rename"]))
            if kind == "rename":
                new = f"moved/{path}"
                if new in used or new in existing:
                    continue
                ops.append(("rename", new, path))
                used |= {new, path}
            else:
                ops.append((kind, path))
                used.add(path)
    for path in draw(st.lists(PATHS, max_size=3, unique=True)):
        new = f"new/{path}"
        clash = any(p == new or p.startswith(new + "/") or new.startswith(p + "/")
                    for p in [*existing, *used])
        if not clash:
            ops.append(("add", new))
            used.add(new)
    return existing, ops


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), CONTENT)
def test_rollback_restores_exactly_what_was_there(
    case: tuple[dict[str, tuple[bytes, int]], list[tuple[str, ...]]], new_content: bytes
) -> None:
    existing, ops = case
    tmp = Path(tempfile.mkdtemp())
    try:
        env = make_env(tmp)
        for path, (data, mode) in existing.items():
            target = env.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(mode)
        before = snapshot(env.root)
        files = []
        for op in ops:
            if op[0] == "rename":
                files.append(("rename", op[1], existing[op[2]][0], op[2]))
            elif op[0] == "delete":
                files.append(("delete", op[1], None, None))
            else:
                files.append((op[0], op[1], new_content, None))
        event(f"{len(files)} file operation(s)")
        t = stage(env, "P1", files=files)  # type: ignore[arg-type]
        a = archive.create(env.state_dir, t, root=env.root, db=None)
        stored = {e["path"] for e in a.manifest["files"]}
        touched = {p for f in t.files for p in (f.path, f.old_path) if p}
        assert stored == touched
        for i in range(len(t.files)):
            steps.apply_file(t, i, env.root)
        archive.restore_files(a, env.root)
        assert archive.check_files(a, env.root) == []
        assert snapshot(env.root) == before
    finally:
        shutil.rmtree(tmp)
