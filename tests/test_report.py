"""`dasct report`: a real repository (fix commits, a QA ledger, two migrated environments)
rendered to one page, then opened in headless Chromium (driven through chromedriver's
WebDriver protocol) to check what the page shows: the charts' marks and the figures, no
injected markup, no external URL. With DASCT_REPORT_SCREENSHOT=PATH the screenshot is
kept there (docs/report.png is made so)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dasct import config
from dasct.migrate import promotion
from dasct.migrate.environment import Environment, environment
from dasct.report import data, page
from dasct_run import dasct
from gitrepo import GitRepo

sys.path.insert(0, str(Path(__file__).parent / "migrate"))  # the engine tests' kit
from engine_kit import migrate_run, quiet, stage

HOSTILE_KEY = "BUG-<script>alert(1)</script>"
HOSTILE_PATH = "src/<img src=x onerror=alert(2)>.py"
CONFIG = """[defects]
patterns = ['PROJ-[0-9]+', 'BUG-[^ ]+']
[qa]
default_assignee = "qa@example.com"
[environments.model]
root = "env/model/target"
database = "sqlite:///env/model/db.sqlite"
state_dir = "env/model/state"
staging = "env/model/staging"
[environments.production]
root = "env/production/target"
database = "sqlite:///env/production/db.sqlite"
state_dir = "env/production/state"
staging = "env/production/staging"
"""
CODE = "def parse(text):\n    tokens = text.split()\n    return tokens\n"
FIXED = "def parse(text):\n    tokens = text.split() if text else []\n    return tokens\n"


# ------------------------------------------------------------------------ the repository


def _environments(root: Path) -> dict[str, Environment]:
    cfg = config.load(root)
    envs = {name: environment(cfg, name, root) for name in ("model", "production")}
    for env in envs.values():
        env.root.mkdir(parents=True)
    return envs


def _migrate(envs: dict[str, Environment], root: Path) -> None:
    """model: one enhancement migrates, one fails its verify and is rolled back;
    production: the one that passed, signed off in model and promoted."""
    good = [("add-t", "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
             "DROP TABLE t;", "SELECT count(*) = 1 FROM t;")]
    bad = [("add-u", "CREATE TABLE u (x INTEGER);", "DROP TABLE u;",
            "SELECT count(*) = 5 FROM u;")]
    stage(envs["model"], "ENH-1", sql=good)
    stage(envs["model"], "ENH-2", sql=bad)
    assert quiet(envs["model"]).stats.rolled_back == 1
    promotion.signoff(envs["model"], "ENH-1", into=[envs["production"]], repo_root=root,
                      comment="accepted", write=lambda _: None)
    # --now; at the real time: sign-off schedules the promoted trigger from now.
    assert quiet(envs["production"], ignore_window=True,
                 now=datetime.now(timezone.utc)).stats.migrated == 1


def _history(repo: GitRepo) -> None:
    repo.write(".gitignore", "env/\n*.html\n")
    repo.write(".dasct.toml", CONFIG)
    base = repo.commit("initial", {"src/parser.py": CODE, HOSTILE_PATH: "a = 1\nb = 2\n"})
    repo.commit("PROJ-1: parse(None) crashed", {"src/parser.py": FIXED})
    repo.commit(f"{HOSTILE_KEY} fix a and b", {HOSTILE_PATH: "a = 10\nb = 3  # fixed\n"})
    first = repo.commit("tidy", {"src/parser.py": FIXED.replace("if text", "if text is not None")})
    repo.commit("simplify", {HOSTILE_PATH: "a = 10\nb = 4\n"})
    assert dasct(repo.path, "ci", "record", "--range", f"{base}..HEAD").code == 0
    accepted = dasct(repo.path, "qa", "accept", "PROJ-1", "--commit", first)
    assert accepted.code == 0, accepted.err


@pytest.fixture
def full(repo: GitRepo) -> GitRepo:
    _history(repo)
    _migrate(_environments(repo.path), repo.path)
    return repo


def _report(repo: GitRepo, *args: str) -> tuple[Path, str]:
    out = repo.path / "report.html"
    result = dasct(repo.path, "report", "-o", str(out), *args)
    assert result.code == 0, result.err
    assert re.fullmatch(rf"dasct: report written to {re.escape(str(out))} \(\d+ protected "
                        r"lines? in \d+ files?, \d+ revalidations?, \d+ environments?\)\n",
                        result.out), result.out
    return out, out.read_text()


def _embedded(text: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="dasct-report-data">(.*?)</script>',
                      text, re.S)
    assert found
    figures: dict[str, Any] = json.loads(found.group(1))
    return figures


def test_the_figures_come_from_the_repository_and_user_data_stays_text(full: GitRepo) -> None:
    _, text = _report(full)
    figures = _embedded(text)
    d = figures["defects"]
    # src/parser.py line 2 is PROJ-1's (through the accepted touch); the hostile file's
    # line 2 was rewritten by "simplify" after BUG-...'s fix: only its line 1 is protected.
    scan = dasct(full.path, "scan", "--format", "json").json()["lines"]
    assert d["lines"] == len(scan) and d["files"] == len({x["path"] for x in scan})
    assert [(f["path"], f["lines"], f["defects"]) for f in d["top"]] == [
        (HOSTILE_PATH, 1, [HOSTILE_KEY]), ("src/parser.py", 1, ["PROJ-1"])]
    r = figures["revalidations"]
    assert (r["opened"], r["closed"], r["open"], r["accepted"]) == (2, 1, 1, 1)
    assert sum(day["opened"] for day in r["days"]) == 2
    envs = {e["name"]: e for e in figures["environments"]}
    assert sorted(envs) == ["model", "production"]
    model, prod = envs["model"]["migrations"], envs["production"]["migrations"]
    assert (model["attempted"], model["migrated"], model["rolled_back"]) == (2, 1, 1)
    assert model["success_percent"] == 50.0 and prod["success_percent"] == 100.0
    assert all(e["audit"]["ok"] and e["audit"]["records"] > 0 for e in envs.values())
    # Model gates production: warranties are production's (migrate/warranty.py).
    assert [(w["environment"], w["enhancement"], w["status"]) for w in figures["warranty"]] == [
        ("production", "ENH-1", "WP")]
    # A hostile defect key and path are protected lines and revalidations: both land in
    # the page, as text.
    full.commit("BUG-<b>bold</b>&amp; again", {HOSTILE_PATH: "a = 10\nb = 5\n"})
    _, text = _report(full)
    assert "<script>alert" not in text and "<img" not in text and "<b>bold" not in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text
    assert "BUG-&lt;b&gt;bold&lt;/b&gt;&amp;amp;" in text  # the new fix's key, as text
    assert HOSTILE_KEY in json.dumps(_embedded(text))  # the figures keep the value itself
    assert text.count("<script") == 1
    assert not re.search(r"(?i)(https?|ftp|wss?|file):|//[\w.-]+\.|url\(|@import", text)


def test_damaged_and_interrupted_environments_show(full: GitRepo) -> None:
    """A tampered audit log, a damaged inventory and an interrupted migration: each is
    shown, none stops the report (one repository: building one costs seconds)."""
    env = environment(config.load(full.path), "model", full.path)
    stage(env, "ENH-3", sql=[("add-v", "CREATE TABLE v (x INTEGER);", "DROP TABLE v;", None)])
    assert migrate_run(full.path, kill_at="sql-deploy:0:intent").returncode == -9
    log = full.path / "env/production/state/audit.jsonl"
    log.write_text(log.read_text().replace('"migrated"', '"forged"', 1))
    broken = full.path / "env/model/state/inventory.json"
    broken.write_text("{not json")
    out = full.path / "report.html"
    result = dasct(full.path, "report", "-o", str(out))
    assert result.code == 0
    assert result.err.startswith(f"dasct: {broken}: unreadable (JSONDecodeError: ")
    text = out.read_text()
    figures = _embedded(text)
    envs = {e["name"]: e for e in figures["environments"]}
    prod = envs["production"]["audit"]
    assert not prod["ok"] and any("edited" in p for p in prod["problems"])
    assert envs["model"]["audit"]["ok"] and "FAILED: " in text
    assert [w["environment"] for w in figures["warranty"]] == ["production"]
    assert f'<p class="bad problem">{broken}: unreadable' in text
    assert envs["model"]["state"] == {"in_flight": "ENH-3", "needs_attention": None}
    assert "A migration of ENH-3 was interrupted: the next run recovers it." in text


def test_an_empty_repository_says_so(repo: GitRepo) -> None:
    repo.commit("initial", {"README": "hello\n"})
    _, text = _report(repo)
    assert 'id="no-data"' in text and "No protected lines at HEAD." in text
    assert "No revalidation request in the ledger." in text
    assert "No enhancement is deployed." in text
    assert "<rect" not in text
    figures = _embedded(text)
    assert figures["defects"]["lines"] == 0 and figures["revalidations"]["days"] == []


def test_top_stdout_and_a_name_that_is_not_utf8(repo: GitRepo) -> None:
    repo.write(".dasct.toml", "")
    names = [b"caf\xe9.py", b"a.py", b"b.py", b"s3cr3t-value-42.py"]
    for name in names:
        (repo.path / os.fsdecode(name)).write_bytes(b"x = 1\n")
    repo.commit("initial")
    for name in names:
        (repo.path / os.fsdecode(name)).write_bytes(b"x = 2\ny = 3\n" if name == b"a.py"
                                                    else b"x = 2\n")
    repo.commit("PROJ-1: fix")
    secret = {"REPORT_API_TOKEN": "s3cr3t-value-42"}  # a secret variable's value
    result = dasct(repo.path, "report", "-o", "-", "--top", "2", env=secret)
    assert result.code == 0, result.err
    d = _embedded(result.out)["defects"]
    assert (d["lines"], d["files"], d["more_files"]) == (5, 4, 2)
    assert [f["path"] for f in d["top"]] == ["a.py", "b.py"]
    assert "2 more file(s) not shown" in result.out
    out = repo.path / "report.html"
    assert dasct(repo.path, "report", "-o", str(out), env=secret).code == 0
    everything = out.read_text()
    assert "caf\\xe9.py" in everything  # its bytes, shown as Python escapes them
    assert "s3cr3t" not in everything and "[redacted].py" in everything


def test_the_output_must_be_writable(repo: GitRepo) -> None:
    repo.commit("initial")
    (repo.path / "out").mkdir()
    result = dasct(repo.path, "report", "-o", "out")
    assert result.code == 1 and result.err.strip() == (
        "dasct: out: is a directory; give the report's file name")


def test_the_json_cannot_end_its_script_element() -> None:
    text = page.embedded_json({"x": "</script><script>alert(1)</script>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"x": "</script><script>alert(1)</script>&"}


def test_revalidations_are_grouped_by_day() -> None:
    class Book:
        def __init__(self, records: list[Any]) -> None:
            self.all = records

        def records(self, *types: str) -> list[Any]:
            return [r for r in self.all if r.type in types]

    from dasct.ledger_record import Record

    def request(key: str, at: str) -> Record:
        ticket = {"key": key, "defect": "PROJ-1", "commit": "c" * 40, "title": "t",
                  "body": "b"}
        return Record("request", {"key": key, "defect": "PROJ-1", "commit": "c" * 40,
                                  "ticket": ticket}, at=at)

    book = Book([request("k1", "2026-11-01T10:00:00Z"), request("k2", "2026-11-01T11:00:00Z"),
                 request("k3", "2026-11-03T09:00:00.000001Z"),
                 Record("reject", {"key": "k1"}, at="2026-11-03T12:00:00Z")])
    got = data.revalidations(book)
    # More days than a chart draws: the latest are drawn, the JSON keeps every one.
    many = Book([request(f"m{i}", f"2026-{1 + i // 28:02}-{1 + i % 28:02}T10:00:00Z")
                 for i in range(page.MAX_DAYS + 5)])
    section = page._revalidations(data.revalidations(many))
    assert section.count('<rect class="bar"') == 2 * page.MAX_DAYS
    assert f"The latest {page.MAX_DAYS} of {page.MAX_DAYS + 5} days" in section
    assert got["days"] == [{"day": "2026-11-01", "opened": 2, "closed": 0, "open": 2},
                           {"day": "2026-11-03", "opened": 1, "closed": 1, "open": 2}]
    assert (got["rejected"], got["accepted"], got["open"]) == (1, 0, 2)


# ----------------------------------------------------------------------- in the browser


def _browser() -> tuple[str, str]:
    """(chromium, chromedriver), or a skip with the reason (a failure in CI)."""
    chromium = os.environ.get("DASCT_TEST_CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome")
         if (found := shutil.which(name))), "")
    driver = os.environ.get("DASCT_TEST_CHROMEDRIVER") or shutil.which("chromedriver") or ""
    if chromium and driver:
        return chromium, driver
    reason = os.environ.get("DASCT_TEST_CHROMIUM_SKIP_REASON") or (
        "chromium and chromedriver are not installed (ci/services.sh installs them as root)")
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and the browser is missing: {reason}")
    pytest.skip(reason)


class WebDriver:
    """Just enough of the W3C WebDriver protocol, over loopback HTTP (no selenium)."""

    def __init__(self, base: str, session: str) -> None:
        self.base = f"{base}/session/{session}"

    @staticmethod
    def call(url: str, method: str, body: object = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=payload, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read())["value"]

    def open(self, path: Path) -> None:
        self.call(f"{self.base}/url", "POST", {"url": path.as_uri()})

    def js(self, script: str) -> Any:
        return self.call(f"{self.base}/execute/sync", "POST", {"script": script, "args": []})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call(f"{self.base}/screenshot", "GET"))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    chromium, driver = _browser()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Chromium writes its caches and crash settings under HOME: a home of its own.
    home = tmp_path / "browser-home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                WebDriver.call(f"{base}/status", "GET")
                break
            except OSError:
                time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,2200",
                f"--user-data-dir={tmp_path / 'chromium'}"]
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium, "args": args}}}}
        session = WebDriver.call(f"{base}/session", "POST", caps)["sessionId"]
        yield WebDriver(base, session)
        WebDriver.call(f"{base}/session/{session}", "DELETE")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


DRAWN = """
const drawn = s => [...document.querySelectorAll(s)].map(e => {
  const b = e.getBoundingClientRect();
  return {value: Number(e.dataset.value), series: e.dataset.series || e.dataset.column,
          env: e.closest('[data-environment]')?.dataset.environment || null,
          width: b.width, height: b.height, fill: getComputedStyle(e).fill};
});
return {cells: drawn('#defects rect.cell'), bars: drawn('#revalidations rect.bar'),
        points: drawn('#revalidations circle.point'), migrations: drawn('#migrations rect.bar'),
        text: document.body.innerText, scripts: document.scripts.length,
        fetching: document.querySelectorAll('[src],[href],link,iframe,object,embed,img').length,
        data: JSON.parse(document.getElementById('dasct-report-data').textContent)};
"""


def test_the_browser_shows_the_charts_and_figures(full: GitRepo, browser: WebDriver) -> None:
    out, _ = _report(full)
    browser.open(out)
    shown = browser.js(DRAWN)
    figures = shown["data"]
    d, r = figures["defects"], figures["revalidations"]
    # One heat map cell per file and kind, shaded, and sized by the layout.
    assert len(shown["cells"]) == len(d["top"]) * len(d["kinds"]) > 0
    assert sum(c["value"] for c in shown["cells"]) == d["lines"]
    assert all(c["width"] > 0 and c["height"] > 0 for c in shown["cells"])
    assert len({c["fill"] for c in shown["cells"]}) > 1  # the hot cell stands out
    # Two bars per day (opened, closed) and one point per day (still open).
    assert len(shown["bars"]) == 2 * len(r["days"]) and len(shown["points"]) == len(r["days"])
    assert sum(b["value"] for b in shown["bars"] if b["series"] == "opened") == r["opened"]
    assert all((b["height"] > 0) == (b["value"] > 0) for b in shown["bars"])
    # Four bars per day per environment; the rolled-back one is model's.
    for env in figures["environments"]:
        bars = [b for b in shown["migrations"] if b["env"] == env["name"]]
        assert len(bars) == 4 * len(env["migrations"]["days"]) > 0
        drawn = {s: sum(b["value"] for b in bars if b["series"] == s)
                 for s in ("migrated", "rolled_back")}
        assert drawn == {"migrated": env["migrations"]["migrated"],
                         "rolled_back": env["migrations"]["rolled_back"]}
    text = shown["text"]
    assert "success rate" in text and "50%" in text and "100%" in text
    assert "ENH-1" in text and "WP" in text and text.count("ok") >= 2
    assert "2\nopened" in text and "1\nstill open" in text
    assert "No data yet" not in text
    assert HOSTILE_KEY in text or HOSTILE_KEY in json.dumps(figures)
    assert shown["scripts"] == 1 and shown["fetching"] == 0
    png = browser.screenshot()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    keep = os.environ.get("DASCT_REPORT_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(png)


def test_the_browser_shows_an_empty_report(repo: GitRepo, browser: WebDriver) -> None:
    repo.commit("initial", {"README": "hello\n"})
    out, _ = _report(repo)
    browser.open(out)
    shown = browser.js(DRAWN)
    assert shown["cells"] == [] and shown["bars"] == [] and shown["migrations"] == []
    assert "No data yet" in shown["text"] and "No protected lines at HEAD." in shown["text"]
