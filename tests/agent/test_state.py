"""The agent's state file: round trip, lock, and a tampered or truncated file refused."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from dasct.agent import AgentError
from dasct.agent import state as st


def _full() -> st.State:
    return st.State(installed=3, uses=2, since=100.0, last_check=100.0, last_result="nothing new",
                    waiting=st.Waiting({"version": 4, "defects": ["PROJ-1"]}, "/x/4.tar", 200.0),
                    noticed=3, windows=(st.Window(3, ("t1", "t2"), 2, 50.0, 99.0),),
                    declined=(5,))


def test_round_trip(tmp_path: Path) -> None:
    path = st.path_of(tmp_path)
    assert st.load(path) == st.State()  # none yet: a fresh state
    st.save(path, _full())
    assert st.load(path) == _full()
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_edited_state_is_refused(tmp_path: Path) -> None:
    path = st.path_of(tmp_path)
    st.save(path, _full())
    doc = json.loads(path.read_text())
    doc["body"]["installed"] = 99  # pretend a newer version is installed
    path.write_text(json.dumps(doc))
    with pytest.raises(AgentError, match="damaged or was edited") as info:
        st.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cut", [0, 1, 10, -2])
def test_a_truncated_state_is_refused(tmp_path: Path, cut: int) -> None:
    path = st.path_of(tmp_path)
    st.save(path, _full())
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut - 40])
    with pytest.raises(AgentError, match="not believed"):
        st.load(path)


def test_a_state_with_a_wrong_shape_is_refused(tmp_path: Path) -> None:
    path = st.path_of(tmp_path)
    for text in ("[]", '{"body": 3}', '{"format": "dasct-agent-state", "body": {}, "sha256": 1}'):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        with pytest.raises(AgentError):
            st.load(path)


def test_update_under_the_lock_loses_no_use(tmp_path: Path) -> None:
    path = st.path_of(tmp_path)

    def count() -> None:
        for _ in range(25):
            with st.update(path) as change:
                change.set(uses=change.state.uses + 1)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert st.load(path).uses == 100


def test_windows_replace_and_remove() -> None:
    s = _full()
    later = st.Window(3, ("t1", "t2"), 2, 50.0, 500.0)
    assert st.with_window(s, later) == (later,)
    assert st.without_window(s, 3) == ()
