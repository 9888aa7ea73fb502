"""The QA loop's figures (issue 9), ratios measured side by side.

    python bench/qa.py [--repo PATH] [--commits 1000] [--rounds 3]
                       [--only record,hook,link,bigledger] [--work DIR] [--profile warm,cold]

On the generated 10,000-commit repository (bench/run.py makes it) or on a repository
given with --repo (only read: every measurement runs in throw-away clones made with
`git clone --no-local`, or copies when git cannot serve the repository whole, kept in
--work, default bench/out/qa-<name>, and reused by a later run), in interleaved rounds
(each round runs every command once, so the machine's noise hits them alike), the
medians, wall-clock and CPU (user + system, git children included), of:

1. record: `dasct ci record --range HEAD~N..HEAD --no-push --format json` (local tracker,
   no test_command) cold (no .git/dasct at all: what CI does in a fresh clone) and warm
   (the index at HEAD built beforehand, restored before each round), against
   `git log -p --first-parent HEAD~N..HEAD`; each round on a fresh ledger (the ledger
   branch and .git/dasct/qa deleted). Then a cProfile of one warm and one cold run.
2. hook: a clone with a ledger of 10,000 records (written with Ledger.append in batches:
   request and filed records, 100 link records of real lines) beside the same clone
   without one: `dasct check --staged` on the 10-hunk change of bench/run.py, each against
   the floor `python -c pass` + `git diff --cached -U0`; and `dasct scan` in both.
3. link: the first `dasct scan` after one more link record (the index is rebuilt: the
   ledger's link fingerprint changed) against `dasct index --rebuild`, and a second scan.
   The link is written the way `dasct link --no-push` writes it (link.owners, then
   Ledger.append) but in this process, because the command also starts a background
   refresh that would race the scan being timed.
4. bigledger: the warm `ci record` of 1. in the clone with the 10,000-record ledger
   (reset to it before each round) beside the clone without one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench/ is no package: its scripts import one another from this directory.
import scale
from run import DASCT, ENV, OUT, machine, repo_with

LEDGER_REF = "refs/heads/dasct-ledger"
PRISTINE = "refs/bench/ledger-pristine"  # the ledger as bench_hook wrote it
LEDGER_RECORDS = 10_000
LINKS = 100


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure(cmd: tuple[str, ...], cwd: Path) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds of cmd, and its standard output (dasct's JSON; git's
    output goes to /dev/null as in bench/questions.py)."""
    is_git = cmd[0] == "git"
    started, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(cmd, cwd=cwd, env=ENV, check=True, text=True,
                          stdout=subprocess.DEVNULL if is_git else subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, _cpu() - cpu, done.stdout or ""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(("git", *args), cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def clone(src: Path, dst: Path) -> None:
    """A clone of src at dst; a copy of it when git cannot serve it whole (a mirror that
    lacks some blobs, stood in for locally with `git replace`, as our apache/maven's)."""
    shutil.rmtree(dst, ignore_errors=True)
    done = subprocess.run(("git", "clone", "-q", "--no-local", str(src), str(dst)),
                          stderr=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, symlinks=True)
        shutil.rmtree(dst / ".git" / "dasct", ignore_errors=True)
        subprocess.run(("git", "update-ref", "-d", LEDGER_REF), cwd=dst, check=False,
                       stderr=subprocess.DEVNULL)
        print(f"  {src} cannot be cloned whole: copied instead", flush=True)


def fresh_ledger(repo: Path) -> None:
    """No ledger, no outbox: the state of a range never recorded."""
    subprocess.run(("git", "update-ref", "-d", LEDGER_REF), cwd=repo, check=False,
                   stderr=subprocess.DEVNULL)
    for name in ("qa", "qa-notices"):
        shutil.rmtree(repo / ".git" / "dasct" / name, ignore_errors=True)


def indexed(src: Path, dst: Path) -> Path:
    """A clone of src with its index built at HEAD (snapshot and checkpoints), kept as a
    copy beside it (index.saved) so that each round can start from exactly that index."""
    saved = dst.parent / f"{dst.name}.index"
    if not saved.is_dir():
        clone(src, dst)
        started = time.perf_counter()
        subprocess.run((*DASCT, "index", "--rebuild", "--quiet"), cwd=dst, env=ENV,
                       check=True)
        print(f"  index of {dst.name} built in {time.perf_counter() - started:.1f} s",
              flush=True)
        shutil.copytree(dst / ".git" / "dasct" / "index", saved)
    return dst


def restore_index(repo: Path) -> None:
    saved = repo.parent / f"{repo.name}.index"
    target = repo / ".git" / "dasct" / "index"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(saved, target)


def table(samples: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in samples.items()}


WRAPPERS = ("runpy", "<string>", "builtins.exec", "__main__.py", "cli.py", "commands/ci.py")


def top(prof: Path, key: str, count: int) -> str:
    """The profile's first `count` entries by key, without the interpreter's and the
    CLI's wrappers (each as long as the whole run)."""
    out = io.StringIO()
    pstats.Stats(str(prof), stream=out).sort_stats(key).print_stats(count + len(WRAPPERS) + 6)
    lines = out.getvalue().splitlines()
    head = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    rows = [line for line in lines[head + 1:]
            if line.strip() and not any(w in line for w in WRAPPERS)]
    return "\n".join([lines[head], *rows[:count]])


def bench_record(src: Path, work: Path, n: int, rounds: int, profile: tuple[str, ...]
                 ) -> dict:
    rng = f"HEAD~{n}..HEAD"
    cold, warm = work / "cold", indexed(src, work / "warm")
    if not (cold / ".git").is_dir():
        clone(src, cold)
    record = (*DASCT, "ci", "record", "--range", rng, "--no-push", "--format", "json")
    log = ("git", "log", "-p", "--first-parent", rng)
    samples: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": [], "log": [],
                                                     "log all": []}
    outs: dict[str, dict] = {}
    for i in range(rounds):
        shutil.rmtree(cold / ".git" / "dasct", ignore_errors=True)
        fresh_ledger(cold)
        wall, cpu, out = measure(record, cold)
        samples["cold"].append((wall, cpu))
        outs["cold"] = json.loads(out)
        samples["log"].append(measure(log, cold)[:2])
        samples["log all"].append(measure(("git", "log", "-p", rng), cold)[:2])
        fresh_ledger(warm)
        restore_index(warm)
        wall, cpu, out = measure(record, warm)
        samples["warm"].append((wall, cpu))
        outs["warm"] = json.loads(out)
        print(f"  round {i + 1}: cold {samples['cold'][-1][0]:.2f} s, warm "
              f"{samples['warm'][-1][0]:.2f} s, git log {samples['log'][-1][0]:.2f} s",
              flush=True)
    med = table(samples)
    chain = int(git(warm, "rev-list", "--first-parent", "--count", rng))
    every = int(git(warm, "rev-list", "--count", rng))
    filed = {k: (len(o["requests"]), o["sent"]["delivered"], o["commits"])
             for k, o in outs.items()}
    log_w, log_c = med["log"]
    print(f"\n1. ci record --range {rng} --no-push ({chain} first-parent commits, {every} "
          f"in the range): medians of {rounds} interleaved rounds, wall | CPU")
    for k in ("cold", "warm"):
        w, c = med[k]
        print(f"   {k}: {w:.2f} s | {c:.2f} s -> {w / log_w:.2f}x | {c / log_c:.2f}x "
              f"git log -p --first-parent (target <= 2x); {filed[k][2]} commits recorded, "
              f"{filed[k][0]} requests, {filed[k][1]} delivered (local tracker)")
    print(f"   git log -p --first-parent {rng}: {log_w:.2f} s | {log_c:.2f} s; "
          f"git log -p (every commit): {med['log all'][0]:.2f} s | {med['log all'][1]:.2f} s")
    result = {"range": rng, "first_parent": chain, "commits": every, "filed": filed,
              "medians": med}
    for k, repo in (("warm", warm), ("cold", cold)):
        if k in profile:
            fresh_ledger(repo)
            if k == "warm":
                restore_index(repo)
            else:
                shutil.rmtree(repo / ".git" / "dasct", ignore_errors=True)
            prof = work / f"record-{k}.prof"
            subprocess.run((sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "dasct",
                            *record[3:]), cwd=repo, env=ENV, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for order, count in (("cumulative", 30), ("tottime", 12)):
                print(f"\n   cProfile of one {k} run, top entries by {order} time:")
                print("   " + top(prof, order, count).replace("\n", "\n   "))
    return result


def _small_files(repo: Path, count: int = 5) -> list[str]:
    """count text files of 50-300 lines at HEAD, in name order (cheap to blame)."""
    found = []
    for name in git(repo, "ls-files").splitlines():
        try:
            data = (repo / name).read_bytes()
        except OSError:
            continue
        if b"\0" not in data and 50 <= data.count(b"\n") <= 300:
            found.append(name)
    return sorted(found)[:count]


def link_records(repo: Path, count: int, salt: int = 0) -> list:
    """count link records of real lines at HEAD, as `dasct link` writes them."""
    from dasct import git as dgit
    from dasct.commands.link import _spans, owners
    from dasct.ledger_record import Record

    r = dgit.discover(repo)
    names = _small_files(repo)
    out = []
    for i in range(count):
        name = names[i % len(names)]
        line = 1 + (7 * i + salt) % 45
        for (commit, where), lines in sorted(owners(r, r.head, name, line, line + 2).items()):
            out.append(Record("link", {"defect": f"QA-{i + 1 + salt * 1000}",
                                       "commit": commit, "path": where,
                                       "lines": [[a, b] for a, b in _spans(sorted(lines))],
                                       "asked": f"{name}:{line}-{line + 2} at {r.head[:12]}"}))
        if len(out) >= count:
            break
    return out[:count]


def build_ledger(repo: Path, total: int, links: int) -> float:
    """A ledger of `total` records: `links` link records, the rest requests and filed
    tickets shaped like the ones ci record writes (a ticket body of ~1.5 kB each)."""
    from dasct import git as dgit
    from dasct.ledger import Ledger
    from dasct.ledger_record import Record
    from dasct.tickets import ticket_key
    from dasct.trackers import Ticket

    r = dgit.discover(repo)
    book = Ledger(r, remote="")
    shas = git(repo, "rev-list", "--first-parent", "-n", "2000", "HEAD").split()
    body = "\n".join(f"-    old line {k} of the protected code\n+    new line {k}"
                     for k in range(30))
    started = time.perf_counter()
    book.append(link_records(repo, links))
    batch: list = []
    for i in range((total - links) // 2):
        # Defects ci record never finds here (OLD-n): the requests are history, not the
        # ones the benchmark's ranges would file.
        sha, defect = shas[i % len(shas)], f"OLD-{i + 1}"
        ticket = Ticket(key=ticket_key(defect, sha), defect=defect, commit=sha,
                        title=f"Revalidate {defect}: {sha[:12]} changed 2 protected lines",
                        body=body, labels=("dasct", ticket_key(defect, sha)))
        batch.append(Record("request", {
            "key": ticket.key, "defect": defect, "commit": sha, "parent": sha,
            "author": "dev@example.com", "fixes": [shas[(i + 7) % len(shas)]],
            "ticket": ticket.to_dict()}))
        batch.append(Record("filed", {"key": ticket.key, "tracker": "local",
                                      "id": ticket.key, "url": ""}))
        if len(batch) >= 1000:
            book.append(batch)
            batch = []
    book.append(batch)
    return time.perf_counter() - started


def bench_hook(src: Path, work: Path, rounds: int) -> dict:
    plain = indexed(src, work / "warm")
    fresh_ledger(plain)
    restore_index(plain)
    booked = work / "ledger"
    if not (booked / ".git").is_dir() or not git(booked, "for-each-ref", LEDGER_REF):
        shutil.rmtree(booked, ignore_errors=True)
        shutil.copytree(plain, booked, symlinks=True)
        took = build_ledger(booked, LEDGER_RECORDS, LINKS)
        # Kept aside: section 4 starts every round from exactly these 10,000 records.
        git(booked, "update-ref", PRISTINE, LEDGER_REF)
        count = git(booked, "ls-tree", "-r", "--name-only", LEDGER_REF).count("\n") + 1
        print(f"  ledger of {count:,} records written in {took:.1f} s", flush=True)
        started = time.perf_counter()
        subprocess.run((*DASCT, "scan", "--format", "json"), cwd=booked, env=ENV,
                       check=True, stdout=subprocess.DEVNULL)
        print(f"  its first scan (the index rebuilt with the links): "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    repos = {"no ledger": plain, "10,000 records": booked}
    # The generated repository has its designated deep files; a real one gets its longest
    # files with protected lines (the same in both clones).
    names = None if (plain / "core" / "deep0.py").is_file() else dict.fromkeys(
        repos, scale.largest_protected(plain))
    if names:
        print(f"  10 hunks in {names['no ledger']}", flush=True)
    hook = scale._hook_and_floor(repos, max(15, rounds * 7), protected=False, names=names)
    print(f"\n2. check --staged, 10 hunks, no protected line hit; medians of "
          f"{max(15, rounds * 7)} interleaved rounds:")
    for key in repos:
        c, f = hook[f"{key} check"], hook[f"{key} floor"]
        print(f"   {key}: {c * 1000:.1f} ms, floor {f * 1000:.1f} ms -> {c / f:.2f}x the "
              f"floor (target <= 2x); {int(hook[f'{key} findings'])} findings")
    ratio = hook["10,000 records check"] / hook["no ledger check"]
    print(f"   with / without the ledger: {ratio:.2f}x")
    scan = (*DASCT, "scan", "--format", "json")
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in repos}
    for _ in range(max(5, rounds * 2)):
        for key, repo in repos.items():
            samples[key].append(measure(scan, repo)[:2])
    med = table(samples)
    print(f"   dasct scan: no ledger {med['no ledger'][0]:.3f} s | "
          f"{med['no ledger'][1]:.3f} s CPU; 10,000 records {med['10,000 records'][0]:.3f} s"
          f" | {med['10,000 records'][1]:.3f} s CPU -> "
          f"{med['10,000 records'][0] / med['no ledger'][0]:.2f}x")
    return {"hook": hook, "scan": med}


def bench_link(work: Path, rounds: int) -> dict:
    from dasct import git as dgit
    from dasct.ledger import Ledger

    booked = work / "ledger"
    if not (booked / ".git").is_dir():
        raise SystemExit("--only link needs the ledger clone of --only hook first")
    book = Ledger(dgit.discover(booked), remote="")
    scan = (*DASCT, "scan", "--format", "json")
    rebuild = (*DASCT, "index", "--rebuild", "--quiet")
    samples: dict[str, list[tuple[float, float]]] = {"first scan": [], "second scan": [],
                                                     "rebuild": []}
    measure(scan, booked)  # in step with the ledger as it is
    for i in range(rounds):
        book.append(link_records(booked, 1, salt=int(time.time()) % 997 + i))
        samples["first scan"].append(measure(scan, booked)[:2])
        samples["second scan"].append(measure(scan, booked)[:2])
        samples["rebuild"].append(measure(rebuild, booked)[:2])
    med = table(samples)
    r = med["rebuild"]
    print(f"\n3. after one link record, medians of {rounds} interleaved rounds, wall | CPU:")
    for k, (w, c) in med.items():
        print(f"   {k}: {w:.2f} s | {c:.2f} s -> {w / r[0]:.2f}x | {c / r[1]:.2f}x "
              "dasct index --rebuild")
    return med


def bench_record_ledger(work: Path, n: int, rounds: int) -> dict:
    """ci record (warm) in the clone with the 10,000-record ledger beside the clone
    without one: what a large ledger costs the recorder (every append reads its tree)."""
    plain, booked = work / "warm", work / "ledger"
    if not git(booked, "for-each-ref", PRISTINE):
        raise SystemExit("--only bigledger needs the ledger clone of --only hook first")
    tip = git(booked, "rev-parse", PRISTINE)  # not the branch: a run may have grown it
    subprocess.run((*DASCT, "scan", "--format", "json"), cwd=booked, env=ENV, check=True,
                   stdout=subprocess.DEVNULL)  # the index in step with the links
    saved = work / "ledger.index"
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(booked / ".git" / "dasct" / "index", saved)
    record = (*DASCT, "ci", "record", "--range", f"HEAD~{n}..HEAD", "--no-push",
              "--format", "json")
    samples: dict[str, list[tuple[float, float]]] = {"no ledger": [], "10,000 records": []}
    filed = {}
    for _ in range(rounds):
        for key, repo in (("no ledger", plain), ("10,000 records", booked)):
            fresh_ledger(repo)
            if repo is booked:
                git(booked, "update-ref", LEDGER_REF, tip)
            restore_index(repo)
            wall, cpu, out = measure(record, repo)
            samples[key].append((wall, cpu))
            filed[key] = len(json.loads(out)["requests"])
    fresh_ledger(booked)
    git(booked, "update-ref", LEDGER_REF, tip)
    med = table(samples)
    a, b = med["no ledger"], med["10,000 records"]
    print(f"\n4. ci record --range HEAD~{n}..HEAD --no-push, warm, medians of {rounds} "
          f"interleaved rounds, wall | CPU:")
    for key, (w, c) in med.items():
        print(f"   {key}: {w:.2f} s | {c:.2f} s, {filed[key]} requests")
    print(f"   with / without the ledger: {b[0] / a[0]:.2f}x | {b[1] / a[1]:.2f}x")
    return {"medians": med, "requests": filed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repo", type=Path, help="a repository (only read; default: "
                        "the generated one)")
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="record,hook,link,bigledger")
    parser.add_argument("--work", type=Path, help="where the clones go")
    parser.add_argument("--profile", default="warm,cold",
                        help="which record runs to profile afterwards ('' : none)")
    args = parser.parse_args()
    src = (args.repo or repo_with(10_000)).resolve()
    work = (args.work or OUT / f"qa-{src.name}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the start, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"repository: {src} at {git(src, 'rev-parse', 'HEAD')[:12]}, "
          f"{git(src, 'rev-list', '--count', 'HEAD')} commits; dasct "
          f"{git(Path(__file__).parent, 'rev-parse', '--short', 'HEAD')}", flush=True)
    result: dict = {"repo": str(src), "head": git(src, "rev-parse", "HEAD")}
    if "record" in only:
        result["record"] = bench_record(src, work, args.commits, args.rounds,
                                        tuple(filter(None, args.profile.split(","))))
    if "hook" in only:
        result["hook"] = bench_hook(src, work, args.rounds)
    if "link" in only:
        result["link"] = bench_link(work, args.rounds)
    if "bigledger" in only:
        result["bigledger"] = bench_record_ledger(work, args.commits, args.rounds)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    saved = OUT / f"qa-{src.name}.json"  # the sections of earlier runs are kept
    earlier = json.loads(saved.read_text()) if saved.exists() else {}
    saved.write_text(json.dumps({**earlier, **result}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
