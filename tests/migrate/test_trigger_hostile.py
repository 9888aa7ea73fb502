"""Property tests: whatever a trigger file or target holds, verification fails cleanly.

Every hostile input must end in a TriggerError with a one-line message naming the file,
never in another exception and never in a trigger that passes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dasct.migrate import trigger as t
from dasct.migrate import trigger_check as trigc
from dasct.migrate import trigger_read as trigr
from dasct.migrate import trigger_write as tw
from dasct.migrate.trigger import FileChange, SqlChange, TriggerError

KEY = b"property-key"
ENVS = ("model",)
T0 = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)
OLD = b"old content\n"
NEW = b"new content\n"
EXAMPLES = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


_TEMPLATES: dict[bytes | None, Path] = {}


def _template(key: bytes | None) -> Path:
    """Build the staging area and target once; examples copy it (no fsync per example)."""
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    where = Path(tempfile.mkdtemp(prefix="dasct-prop-template-"))
    staging = where / "staging"
    deploy = tw.write_payload(staging, b"create table x (a int);\n")
    revert = tw.write_payload(staging, b"drop table x;\n")
    new = tw.write_payload(staging, NEW)
    old = tw.write_payload(staging, OLD)  # the renamed file keeps its content
    doc = tw.document(
        id="E-1", system="app", environment="model", not_before=T0,
        expires=T0 + timedelta(hours=1), defects=["PROJ-1"], commits=["b" * 40],
        sql=[SqlChange("x", deploy, revert, None)],
        files=[
            FileChange("modify", "src/deep/app.py", None, old, new, 0o644),
            FileChange("add", "src/added.py", None, None, new, 0o644),
            FileChange("rename", "lib/b.txt", "lib/a.txt", old, old, 0o755),
            FileChange("delete", "gone.txt", None, old, None, 0o644),
        ],
        commands=[], key=key,
    )
    trig = tw.write(staging, doc, key=key)
    target = where / "target"
    for rel in ("src/deep/app.py", "lib/a.txt", "gone.txt"):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(OLD)
    trigc.check_target(trig, target)  # the untouched setup is valid
    _TEMPLATES[key] = where
    return where


@pytest.fixture(scope="module", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    for where in _TEMPLATES.values():
        shutil.rmtree(where, ignore_errors=True)
    _TEMPLATES.clear()


@contextmanager
def staged(key: bytes | None = KEY) -> Iterator[t.Trigger]:
    """A fresh copy of a staging area with a valid signed trigger, and its target tree."""
    where = Path(tempfile.mkdtemp(prefix="dasct-prop-"))
    try:
        shutil.copytree(_template(key), where, dirs_exist_ok=True, symlinks=True)
        path = t.trigger_path(where / "staging", "model", "E-1")
        yield trigr.load(path, environments=ENVS, key=key, require_signature=key is not None)
    finally:
        shutil.rmtree(where)


def target_of(trig: t.Trigger) -> Path:
    return trig.staging.parent / "target"


def load(path: Path, key: bytes | None = KEY, require: bool = True) -> t.Trigger:
    return trigr.load(path, environments=ENVS, key=key, require_signature=require)


def refused(action: Callable[[], object], path: Path) -> TriggerError:
    """Run action, which must raise a clean TriggerError naming path."""
    with pytest.raises(TriggerError) as info:
        action()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert str(path).replace("\n", "\\n") in message
    return info.value


def reseal(doc: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """A forger's edit: a correct digest (and, with the key, a correct signature)."""
    doc["digest"] = t.compute_digest(doc)
    if key is not None:
        doc["signature"] = t.sign(doc["digest"], key)
    return doc


def key_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document where a value sits."""
    out: list[tuple[Any, ...]] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(
        doc, list) else []
    for k, v in items:
        out.append((*prefix, k))
        out += key_paths(v, (*prefix, k))
    return out


def set_at(doc: Any, where: tuple[Any, ...], value: Any) -> None:
    for k in where[:-1]:
        doc = doc[k]
    doc[where[-1]] = value


@EXAMPLES
@given(data=st.data())
def test_mutated_bytes_never_crash(data: st.DataObject) -> None:
    with staged() as trig:
        raw = bytearray(trig.path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(raw) - 1))
            action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
            if action == "flip":
                raw[pos] ^= data.draw(st.integers(1, 255))
            elif action == "delete":
                del raw[pos]
            else:
                raw.insert(pos, data.draw(st.integers(0, 255)))
        trig.path.write_bytes(bytes(raw))
        try:
            again = load(trig.path)
        except TriggerError as exc:
            assert "\n" not in str(exc) and str(trig.path) in str(exc)
        else:
            # Only a change the digest does not cover (whitespace) may pass.
            assert tw.as_document(again) == tw.as_document(trig)


@EXAMPLES
@given(data=st.data(), value=json_values)
def test_any_value_anywhere_is_refused_or_equivalent(data: st.DataObject, value: Any) -> None:
    with staged() as trig:
        doc = json.loads(trig.path.read_text())
        places = [p for p in key_paths(doc) if p[0] not in ("digest", "signature")]
        where = data.draw(st.sampled_from(places))
        set_at(doc, where, value)
        trig.path.write_text(json.dumps(reseal(doc, KEY)))
        try:
            again = load(trig.path)
        except TriggerError as exc:
            assert "\n" not in str(exc)
        else:
            # The value happened to be valid there: the result must still be safe.
            for change in again.files:
                assert t.path_problem(change.path) is None
            assert again.environment in ENVS and again.version == t.FORMAT_VERSION


@EXAMPLES
@given(doc=json_values)
def test_arbitrary_json_is_not_a_trigger(doc: Any) -> None:
    with staged() as trig:
        trig.path.write_text(json.dumps(doc))
        refused(lambda: load(trig.path, key=None, require=False), trig.path)


@EXAMPLES
@given(data=st.data())
def test_dropping_or_adding_a_key_is_refused(data: st.DataObject) -> None:
    with staged() as trig:
        doc = json.loads(trig.path.read_text())
        dicts = [p for p in key_paths(doc)
                 if isinstance(p[-1], str) and p[0] not in ("digest", "signature")]
        where = data.draw(st.sampled_from(dicts))
        parent: Any = doc
        for k in where[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()):
            del parent[where[-1]]
        else:
            extra = data.draw(st.text(min_size=1, max_size=10))
            assume(extra not in parent)
            parent[extra] = data.draw(json_values)
        trig.path.write_text(json.dumps(reseal(doc, KEY)))
        refused(lambda: load(trig.path), trig.path)


@EXAMPLES
@given(digest=st.text(max_size=70) | st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
def test_bad_digest(digest: str) -> None:
    with staged() as trig:
        assume(digest != trig.digest)
        doc = json.loads(trig.path.read_text())
        doc["digest"] = digest
        trig.path.write_text(json.dumps(doc))
        refused(lambda: load(trig.path), trig.path)


@EXAMPLES
@given(signature=st.from_regex(r"[0-9a-f]{64}", fullmatch=True) | st.text(max_size=70),
       key=st.binary(max_size=40))
def test_bad_signature_or_key(signature: str, key: bytes) -> None:
    with staged() as trig:
        assume(key != KEY)
        refused(lambda: load(trig.path, key=key), trig.path)
        doc = json.loads(trig.path.read_text())
        assume(signature != trig.signature)
        doc["signature"] = signature
        trig.path.write_text(json.dumps(doc))
        refused(lambda: load(trig.path), trig.path)


@EXAMPLES
@given(version=json_values)
def test_unknown_version(version: Any) -> None:
    assume(not (type(version) is int and version == t.FORMAT_VERSION))
    with staged() as trig:
        doc = json.loads(trig.path.read_text())
        doc["version"] = version
        trig.path.write_text(json.dumps(reseal(doc, KEY)))
        refused(lambda: load(trig.path), trig.path)


@EXAMPLES
@given(env=st.text(max_size=20))
def test_unknown_environment(env: str) -> None:
    assume(env not in ENVS)
    with staged() as trig:
        refused(
            lambda: trigr.load(trig.path, environments=[env], key=KEY, require_signature=True),
            trig.path,
        )


hostile_paths = st.one_of(
    st.builds(lambda a, b: f"{a}/../{b}", st.text(max_size=5), st.text(max_size=5)),
    st.builds(lambda a: f"../{a}", st.text(max_size=8)),
    st.builds(lambda a: f"/{a}", st.text(max_size=8)),
    st.builds(lambda a, b: f"{a}\\{b}", st.text(max_size=5), st.text(max_size=5)),
    st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=5), st.text(max_size=5)),
    st.builds(lambda a: f"{a}/..", st.text(max_size=8)),
    st.builds(lambda a: f"./{a}", st.text(max_size=8)),
    st.builds(lambda a: f"C:{a}", st.text(max_size=8)),
    st.just(""),
)


@EXAMPLES
@given(data=st.data(), bad=hostile_paths, field=st.sampled_from(["path", "old_path"]))
def test_escaping_paths_are_refused(data: st.DataObject, bad: str, field: str) -> None:
    with staged() as trig:
        doc = json.loads(trig.path.read_text())
        index = 2 if field == "old_path" else data.draw(st.integers(0, 3))
        doc["steps"]["files"][index][field] = bad
        trig.path.write_text(json.dumps(reseal(doc, KEY)))
        refused(lambda: load(trig.path), trig.path)


@EXAMPLES
@given(rel=st.text(max_size=30))
def test_any_accepted_path_stays_inside_root(rel: str) -> None:
    if t.path_problem(rel) is None:
        root = Path("/srv/root")
        joined = Path(os.path.normpath(root / rel))
        assert joined == root or root in joined.parents


@EXAMPLES
@given(which=st.sampled_from(["src", "src/deep", "src/deep/app.py", "lib", "lib/a.txt",
                              "gone.txt", "src/added.py"]))
def test_symlink_on_the_way_is_refused(which: str) -> None:
    with staged() as trig:
        target = target_of(trig)
        victim = target / which
        outside = trig.staging.parent / "outside"
        if victim.is_dir():
            shutil.copytree(victim, outside)
            shutil.rmtree(victim)
        elif victim.exists():
            shutil.copy(victim, outside)
            victim.unlink()
        else:
            outside.write_bytes(b"")
        victim.symlink_to(outside)
        refused(lambda: trigc.check_target(trig, target), trig.path)


@EXAMPLES
@given(which=st.sampled_from(["src/deep/app.py", "lib/a.txt", "gone.txt"]),
       content=st.binary(max_size=64), how=st.sampled_from(["edit", "remove", "dir"]))
def test_pre_image_mismatch_is_refused(which: str, content: bytes, how: str) -> None:
    with staged() as trig:
        victim = target_of(trig) / which
        victim.unlink()
        if how == "edit":
            assume(content != OLD)
            victim.write_bytes(content)
        elif how == "dir":
            victim.mkdir()
        refused(lambda: trigc.check_target(trig, target_of(trig)), trig.path)


@EXAMPLES
@given(which=st.sampled_from(["src/added.py", "lib/b.txt"]), as_dir=st.booleans())
def test_add_target_present_is_refused(which: str, as_dir: bool) -> None:
    with staged() as trig:
        victim = target_of(trig) / which
        victim.parent.mkdir(parents=True, exist_ok=True)
        if as_dir:
            victim.mkdir()
        else:
            victim.write_bytes(NEW)
        refused(lambda: trigc.check_target(trig, target_of(trig)), trig.path)


@EXAMPLES
@given(data=st.data(), how=st.sampled_from(["missing", "corrupt", "empty"]))
def test_missing_or_corrupt_payload_is_refused(data: st.DataObject, how: str) -> None:
    with staged() as trig:
        name = data.draw(st.sampled_from(trig.payloads()))
        obj = t.object_path(trig.staging, name)
        if how == "missing":
            obj.unlink()
        elif how == "empty":
            obj.write_bytes(b"")
        else:
            raw = bytearray(obj.read_bytes())
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
            obj.write_bytes(bytes(raw))
        refused(lambda: trigc.check_payloads(trig), trig.path)
        with pytest.raises(TriggerError):
            trigc.read_payload(trig.staging, name)


@EXAMPLES
@given(name=st.text(max_size=80))
def test_read_payload_with_any_name(name: str) -> None:
    with staged() as trig:
        try:
            trigc.read_payload(trig.staging, name)
        except TriggerError as exc:
            assert "\n" not in str(exc)
        else:
            assert name in trig.payloads()
