"""Agreement of dasct's line kinds (src/dasct/kinds.py) with Pygments on a real repository.

    python bench/kinds_oracle.py REPO [--files 60] [--seed 1] [--show 5]

Picks --files random files at HEAD that kinds.py has a language family for (0: all),
reads them with git (nothing is written to REPO), and prints, per kind, how many of the
lines Pygments gives that kind dasct gives it too, then the commonest disagreements.
The oracle's mapping of tokens to kinds is tests/kinds_oracle.py.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from dasct import kinds  # noqa: E402
from kinds_oracle import oracle  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=5, help="disagreements to print")
    args = parser.parse_args(argv)
    names = subprocess.run(("git", "-C", str(args.repo), "ls-tree", "-r", "-z", "--name-only",
                            "HEAD"), capture_output=True, check=True).stdout.decode(
                                "utf-8", "surrogateescape").split("\0")
    known = [n for n in names if n and kinds.family(n)]
    random.seed(args.seed)
    sample = known if not args.files else random.sample(known, min(args.files, len(known)))
    agree: Counter[str] = Counter()
    total: Counter[str] = Counter()
    wrong: Counter[tuple[str, str, str]] = Counter()
    examples: dict[tuple[str, str, str], str] = {}
    for name in sample:
        data = subprocess.run(("git", "-C", str(args.repo), "show", f"HEAD:{name}"),
                              capture_output=True, check=True).stdout
        text = data.decode("utf-8", "replace")
        expected = oracle(name, text)
        got = kinds.classify(name, text.encode("utf-8"))
        for n, kind in expected.items():
            total[kind] += 1
            if got.get(n) == kind:
                agree[kind] += 1
            else:
                key = (kinds.family(name).name, kind, got.get(n, "?"))  # type: ignore[union-attr]
                wrong[key] += 1
                examples.setdefault(key, f"{name}:{n}")
    print(f"{args.repo}: {len(sample)} files, {sum(total.values()):,} lines")
    for kind in kinds.KINDS:
        share = agree[kind] / total[kind] if total[kind] else 1.0
        print(f"  {kind:8} {agree[kind]:>8,}/{total[kind]:<8,} {share:7.2%}")
    for (fam, expected_kind, got_kind), count in wrong.most_common(args.show):
        print(f"  {fam}: Pygments {expected_kind}, dasct {got_kind}: {count:,} lines "
              f"(e.g. {examples[fam, expected_kind, got_kind]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
