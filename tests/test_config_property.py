"""The class of bad configurations (dasct.config), by property: for every key of the schema
(walked from the dataclasses themselves, so a new setting is covered the day it is added),
wrong types, empty or NUL strings, out-of-range numbers, wrong nested tables and unknown
keys are one ConfigError line naming the file and the dotted key, in `.dasct.toml` and in
pyproject.toml; random strings for every key, random documents, random bytes and
non-UTF-8 files are a Config or such a line, never another exception."""

from __future__ import annotations

import dataclasses
import math
import tempfile
import typing
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasct import config
from dasct.errors import ConfigError

ENV = "model"  # the name under which a dict-of-sections key (environments) is exercised


class Leaf(NamedTuple):
    path: tuple[str, ...]
    hint: Any
    field: dataclasses.Field[Any]


class Table(NamedTuple):
    path: tuple[str, ...]
    named: bool  # a table of named sections (environments.NAME)


def _walk(cls: Any, prefix: tuple[str, ...]) -> Iterator[Leaf | Table]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "source":  # where the Config came from, not a setting
            continue
        hint, path = hints[f.name], (*prefix, f.name)
        if dataclasses.is_dataclass(hint):
            yield Table(path, named=False)
            yield from _walk(hint, path)
        elif typing.get_origin(hint) is dict and not dataclasses.is_dataclass(
                typing.get_args(hint)[1]):
            # A table of plain values ([qa] owners): each value is a leaf of its own.
            yield Leaf((*path, ENV), typing.get_args(hint)[1], f)
        elif typing.get_origin(hint) is dict:
            section = typing.get_args(hint)[1]
            yield Table(path, named=True)
            yield Table((*path, ENV), named=False)
            yield from _walk(section, (*path, ENV))
        else:
            yield Leaf(path, hint, f)


SCHEMA = list(_walk(config.Config, ()))
LEAVES = [n for n in SCHEMA if isinstance(n, Leaf)]
TABLES = [n for n in SCHEMA if isinstance(n, Table)]


def test_the_walk_sees_the_whole_schema() -> None:
    names = {".".join(leaf.path) for leaf in LEAVES}
    assert {"check.strict", "defects.jira_projects", f"environments.{ENV}.freeze",
            "migrate.expiry_hours"} <= names
    assert len(LEAVES) > 20


# ------------------------------------------------------------------ a small TOML writer


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """value as a TOML value (tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def document(data: dict[str, Any]) -> str:
    return "".join(f"{_string(k)} = {toml_value(v)}\n" for k, v in data.items())


def nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: Any = value
    for name in reversed(path):
        out = {name: out}
    assert isinstance(out, dict)
    return out


# ------------------------------------------------------------------------ strategies

KEY_TEXT = st.text(max_size=12)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(),
    "str": st.text(max_size=20),
    "datetime": st.datetimes(),
    "date": st.dates(),
    "time": st.times(),
}
VALUES = st.recursive(
    st.one_of(*SCALARS.values()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(KEY_TEXT, inner, max_size=3)),
    max_leaves=8,
)


def _not(*kinds: str) -> st.SearchStrategy[Any]:
    """Any TOML value whose type is none of kinds (and not a list or table when named)."""
    scalars = [s for k, s in SCALARS.items() if k not in kinds]
    nested = [] if "list" in kinds else [st.lists(st.one_of(*SCALARS.values()), max_size=3)]
    tables = [] if "table" in kinds else [st.dictionaries(KEY_TEXT, st.integers(), max_size=2)]
    return st.one_of(*scalars, *nested, *tables)


def _wrong_scalar(hint: Any, field: dataclasses.Field[Any]) -> st.SearchStrategy[Any]:
    if hint is bool:
        return _not("bool")
    if hint is int:
        return st.one_of(_not("int"), st.integers(max_value=-1),
                         st.integers(min_value=2**31, max_value=2**63 - 1))
    if hint is float:
        return st.one_of(_not("int", "float"), st.floats(max_value=-1e-9),
                         st.sampled_from([math.inf, -math.inf, math.nan]))
    assert hint is str, hint
    nul = st.tuples(st.text(max_size=5), st.text(max_size=5)).map(lambda p: f"{p[0]}\0{p[1]}")
    # An empty string is the default of the settings whose "" means "the default"; every
    # other string setting that declares a validator refuses it.
    empty = [st.just("")] if "check" in field.metadata and field.default != "" else []
    return st.one_of(_not("str"), nul, *empty)


def wrong(leaf: Leaf) -> st.SearchStrategy[tuple[Any, str]]:
    """(a wrong value for leaf, the dotted key the error must name)."""
    key = ".".join(leaf.path)
    if typing.get_origin(leaf.hint) is tuple:
        item = typing.get_args(leaf.hint)[0]
        bad_item = st.one_of(_wrong_scalar(item, leaf.field), st.just(""))
        return st.one_of(
            _not("list").map(lambda v: (v, key)),
            bad_item.map(lambda v: ([v], f"{key}[0]")),
        )
    return _wrong_scalar(leaf.hint, leaf.field).map(lambda v: (v, key))


def wrong_table(table: Table) -> st.SearchStrategy[tuple[Any, str]]:
    key = ".".join(table.path)
    unknown = st.from_regex(r"[a-z_][a-z0-9_-]{0,10}", fullmatch=True)
    if table.named:
        # A named section that is not a table.
        return st.tuples(_not("table"), unknown).map(
            lambda p: ({ENV: p[0]}, f"{key}.{ENV}"))
    return st.one_of(
        _not("table").map(lambda v: (v, key)),
        unknown.map(lambda k: ({f"zz{k}": 1}, f"{key}.zz{k}")),  # no setting starts with zz
    )


CASES = st.one_of(
    st.sampled_from(LEAVES).flatmap(lambda leaf: wrong(leaf).map(lambda c: (leaf.path, *c))),
    st.sampled_from(TABLES).flatmap(lambda t: wrong_table(t).map(lambda c: (t.path, *c))),
)


# ------------------------------------------------------------------------ the checks


def load_text(text: str | bytes, *, pyproject: bool) -> tuple[Path, config.Config]:
    """Write text as the config file of a fresh directory and load it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("pyproject.toml" if pyproject else ".dasct.toml")
        if isinstance(text, str):
            path.write_text(text, encoding="utf-8")
        else:
            path.write_bytes(text)
        try:
            return path, config.load(Path(tmp))
        except ConfigError as exc:
            raise Named(path, str(exc)) from exc


class Named(Exception):
    """The ConfigError of a load, with the file that was loaded."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def assert_one_line(err: Named, key: str | None = None) -> None:
    assert len(err.message.splitlines()) == 1, err.message
    assert err.message.startswith(f"{err.path}"), err.message
    if key is not None:
        assert f"`{key}`" in err.message, (key, err.message)


PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(CASES, st.booleans())
def test_a_wrong_value_for_any_key_names_the_file_and_the_key(
        case: tuple[tuple[str, ...], Any, str], pyproject: bool) -> None:
    path, value, key = case
    data = nest(path, value)
    text = document({"tool": {"dasct": data}} if pyproject else data)
    with pytest.raises(Named) as err:
        load_text(text, pyproject=pyproject)
    assert_one_line(err.value, key)


@PROPERTY
@given(st.sampled_from([leaf for leaf in LEAVES if leaf.hint in (str, tuple[str, ...])]),
       st.text(max_size=40), st.booleans())
def test_any_string_for_any_key_is_a_config_or_one_line(leaf: Leaf, text: str,
                                                        pyproject: bool) -> None:
    value: Any = [text] if leaf.hint is not str else text
    data = nest(leaf.path, value)
    try:
        load_text(document({"tool": {"dasct": data}} if pyproject else data),
                  pyproject=pyproject)
    except Named as err:
        assert_one_line(err, ".".join(leaf.path) + ("[0]" if leaf.hint is not str else ""))


@PROPERTY
@given(st.dictionaries(st.one_of(st.sampled_from([t.path[0] for t in TABLES]), KEY_TEXT),
                       VALUES, max_size=4), st.booleans())
def test_any_document_is_a_config_or_one_line(data: dict[str, Any], pyproject: bool) -> None:
    try:
        load_text(document({"tool": {"dasct": data}} if pyproject else data),
                  pyproject=pyproject)
    except Named as err:
        assert_one_line(err)


@PROPERTY
@given(st.binary(max_size=200), st.booleans())
def test_any_bytes_are_a_config_or_one_line(raw: bytes, pyproject: bool) -> None:
    try:
        load_text(raw, pyproject=pyproject)
    except Named as err:
        assert_one_line(err)


@PROPERTY
@given(st.binary(max_size=60), st.binary(max_size=60),
       # never UTF-8 whatever surrounds them: 0xff, an encoded surrogate, an overlong NUL
       st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\x80"]), st.booleans())
def test_a_file_that_is_not_utf8_is_one_line_naming_it(before: bytes, after: bytes, bad: bytes,
                                                       pyproject: bool) -> None:
    with pytest.raises(Named) as err:
        load_text(before + bad + after, pyproject=pyproject)
    assert_one_line(err.value)
    assert ": not UTF-8 (byte 0x" in err.value.message
