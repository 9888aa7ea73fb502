"""What each protected line is in its file's language: code, comment, blank or import.

Protection is the same for every kind; what is reported (warnings, tickets) is the kinds
of `[check] kinds` (default: code), and `reported` is the one place that decides it.

The classifier is a small scanner per language family, not a lexer library: importing
Pygments with one lexer costs 40-100 ms on these machines and lexing a 700-line Java file
90-140 ms, several commit-time checks' worth, where one regex pass finds the comments (and
the strings, so that a "//" or "#" inside a string starts nothing) at C speed. Pygments
is its oracle in tests/test_kinds.py. A line is:
- `blank` when it holds nothing but whitespace and the punctuation {}[]();, (a lone brace);
- `comment` when, besides such punctuation, all it holds is comment (docstrings count);
- `import` when its code is an import, package, #include or using statement, or the
  continuation of one that left a bracket open (Python, Go and JS import lists);
- `code` otherwise (a string is code, a line with code and a trailing comment is code).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate

from dasct import git
from dasct.errors import GitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dasct.catfile import Batches
    from dasct.check import Finding, Protected
    from dasct.settings import Settings

CODE, COMMENT, BLANK, IMPORT = "code", "comment", "blank", "import"
KINDS = (CODE, COMMENT, BLANK, IMPORT)
DEFAULT_REPORTED = (CODE,)
_NOTHING = b" \t\r\f\v{}[]();,"  # what a blank line may hold besides whitespace
# An import statement's continuation is looked for this many lines back at most.
_CONTINUATION_REACH = 64


class Family:
    """How one family of languages writes comments, strings and imports."""

    __slots__ = ("comments", "imports", "lead", "leading", "name", "open_imports", "tokens")

    def __init__(self, name: str, tokens: bytes, comments: tuple[bytes, ...],
                 imports: bytes | None = None, open_imports: bool = False,
                 leading: tuple[bytes, ...] = (), lead: bytes = b"") -> None:
        self.name = name
        # A match of `tokens` is a comment when it starts with one of `comments`, or with
        # one of `leading` and what precedes it on its line fullmatches `lead`; the other
        # alternatives (strings) are there so that a comment marker inside a string is not
        # taken for one. Every alternative starts with a literal and no group is named,
        # so that re skips to the candidates at C speed: named groups or a leading
        # `^[ \t]*` made the scan of a 6,000-line file 4-15 times slower.
        self.tokens = re.compile(tokens)
        self.comments = comments
        self.leading = leading
        self.lead = re.compile(lead)
        self.imports = re.compile(imports) if imports else None
        self.open_imports = open_imports  # an import may go on over lines in brackets


# Regex pieces (bytes), each a string form of one language.
_DQ3 = rb'"""[\s\S]*?(?:"""|\Z)'
_SQ3 = rb"'''[\s\S]*?(?:'''|\Z)"
_DQ = rb'"(?:\\.|[^"\\\n])*"?'  # to the end of the line when unclosed
_SQ = rb"'(?:\\.|[^'\\\n])*'"  # closed on its line, else a Rust lifetime or an apostrophe
_BACKTICK = rb"`(?:\\[\s\S]|[^`\\])*(?:`|\Z)"  # JS templates, Go raw strings: multi-line
_BLOCK = rb"/\*[\s\S]*?(?:\*/|\Z)"

FAMILIES = {
    "c": Family(
        "c", b"|".join((rb"//[^\n]*", _BLOCK, _DQ3, _DQ, _SQ, _BACKTICK)), (b"//", b"/*"),
        rb"\s*(?:(?:import|package)\b(?!\()|#\s*(?:include|import)\b"
        rb"|using\s+(?:namespace\b|static\b|[\w.:]+\s*[;=])|use\s+[\w\\:{]|extern\s+crate\b"
        rb"|@import\b)",
        open_imports=True,
    ),
    "python": Family(
        "python",
        b"|".join((rb"#[^\n]*", _DQ3, _SQ3, _DQ, _SQ)), (b"#",),
        rb"\s*(?:import\s|from\s+[\w.]+\s+import\b)",
        open_imports=True,
        # A triple-quoted string that starts its line is a docstring (as Pygments says).
        leading=(b'"""', b"'''"), lead=rb"[ \t]*[rRuUbB]{0,2}",
    ),
    # Perl's `use Module ...;` is the one import of the family.
    # `#` starts a comment at the start of a line or after a blank or `;` (shell's $#
    # and ${#x} are not comments).
    "hash": Family("hash", b"|".join((rb"#[^\n]*", _DQ, _SQ)), (), rb"\s*use\s+[\w:]+",
                   open_imports=True, leading=(b"#",), lead=rb"(?:.*[ \t;])?"),
    "sql": Family(
        "sql", b"|".join((rb"--[^\n]*", _BLOCK, rb"'[^']*(?:''[^']*)*'?", rb'"[^"\n]*"?')),
        (b"--", b"/*"),
    ),
    "xml": Family("xml", rb"<!--[\s\S]*?(?:-->|\Z)", (b"<!--",)),
}
_BY_SUFFIX = {
    "c": "c h cc cpp cxx c++ hpp hh hxx ino java kt kts scala sc groovy gradle cs js jsx "
         "mjs cjs ts tsx mts cts go rs swift php m mm dart proto css scss less",
    "python": "py pyi pyw",
    "hash": "sh bash zsh ksh fish rb pl pm r yaml yml toml cfg conf mk cmake properties "
            "dockerfile tf hcl nix",
    "sql": "sql",
    "xml": "xml html htm xhtml svg xsd xsl xslt dtd mdo fxml plist csproj vbproj props "
           "targets wsdl jelly tld vue",
}
SUFFIXES = {s: fam for fam, names in _BY_SUFFIX.items() for s in names.split()}
NAMES = {
    "Makefile": "hash", "makefile": "hash", "GNUmakefile": "hash", "Dockerfile": "hash",
    "CMakeLists.txt": "hash", "Gemfile": "hash", "Rakefile": "hash", ".gitignore": "hash",
    ".gitattributes": "hash", ".dockerignore": "hash",
}


def family(path: str) -> Family | None:
    """The language family of path by its name (None: unknown, blank or code only)."""
    name = path.rsplit("/", 1)[-1]
    known = NAMES.get(name)
    if known is None:
        known = SUFFIXES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None
    return FAMILIES[known] if known else None


class _Lines:
    """One file's lines with the comment spans over them, up to the last line asked."""

    def __init__(self, fam: Family | None, text: bytes, last: int) -> None:
        self.fam = fam
        self.lines = text.split(b"\n", last)[:last]
        # Line i (0-based) starts after the i newlines and the lengths of lines before it.
        self.before = [0, *accumulate(map(len, self.lines))]
        self.spans: list[tuple[int, int]] = []
        if fam is not None:
            end = self.before[-1] + len(self.lines)
            for m in fam.tokens.finditer(text, 0, end):
                start = m.start()
                if text.startswith(fam.comments, start) or (
                    text.startswith(fam.leading, start)
                    and fam.lead.fullmatch(text, text.rfind(b"\n", 0, start) + 1, start)
                ):
                    self.spans.append(m.span())
        self.span_starts = [s for s, _ in self.spans]
        self._text = text
        # plain() of each line asked: the look-back of kind() asks the same lines again
        # for each line of a touched hunk (curl's walk: 300,000 calls for 3,500 files).
        self._plain: dict[int, tuple[str, bool, int]] = {}

    def residue(self, n: int) -> tuple[bytes, bool]:
        """Line n without its comments, and whether it had any."""
        line = self.lines[n - 1]
        ls = self.before[n - 1] + n - 1
        le = ls + len(line)
        k = bisect_right(self.span_starts, le - 1) - 1
        cuts: list[tuple[int, int]] = []
        while k >= 0 and self.spans[k][1] > ls:
            s, e = self.spans[k]
            cuts.append((max(s, ls) - ls, min(e, le) - ls))
            k -= 1
        if not cuts:
            return line, False
        out, pos = [], 0
        for s, e in reversed(cuts):
            out.append(line[pos:s])
            pos = e
        out.append(line[pos:])
        return b"".join(out), True

    def plain(self, n: int) -> tuple[str, bool, int]:
        """Line n's kind as if no import bracket were open before it, whether it starts
        an import, and how many brackets it opens (closed ones subtracted)."""
        known = self._plain.get(n)
        if known is None:
            known = self._plain[n] = self._plain_of(n)
        return known

    def _plain_of(self, n: int) -> tuple[str, bool, int]:
        if n > len(self.lines) or not self.lines[n - 1].strip():
            return BLANK, False, 0
        rest, commented = self.residue(n)
        opened = _count(rest, b"([{") - _count(rest, b")]}")
        if not rest.translate(None, _NOTHING):
            return (COMMENT if commented else BLANK), False, opened
        imports = self.fam.imports if self.fam else None
        if imports is not None and imports.match(rest):
            return IMPORT, True, opened
        return CODE, False, opened

    def kind(self, n: int) -> str:
        """Line n's kind, looking back for an import whose brackets it is inside."""
        kind, _, _ = self.plain(n)
        if kind != CODE or not (self.fam and self.fam.open_imports):
            return kind
        for m in range(n - 1, max(0, n - 1 - _CONTINUATION_REACH), -1):
            if self.plain(m)[1]:
                return IMPORT if self._open_after(m, n) else CODE
        return CODE

    def _open_after(self, start: int, n: int) -> bool:
        """Whether the import at line start still has a bracket open before line n."""
        depth = 0
        for m in range(start, n):
            depth = max(depth + self.plain(m)[2], 0)
            if depth == 0:
                return False
        return True

    def every(self) -> dict[int, str]:
        """Every line's kind in one forward pass (what kind() says for each).

        The same rules as plain(), applied to the whole text at once: the comments cut
        out of it in one join (their newlines kept, so that its lines stay the file's),
        and the lines they touched marked, rather than each line cut on its own (a walk
        over apache/maven classifies 460,000 lines; per line that was most of its cost).
        """
        lines = self.lines
        total = len(lines)
        marked = bytearray(total)  # 1: a comment covers part of the line
        rests = lines
        if self.spans:
            text_of = self._text
            starts = [self.before[i] + i for i in range(total)]
            pieces, pos = [], 0
            for s, e in self.spans:
                pieces.append(text_of[pos:s])
                pieces.append(b"\n" * text_of.count(b"\n", s, e))
                pos = e
                first = bisect_right(starts, s) - 1
                last = bisect_right(starts, e - 1) - 1
                marked[first : last + 1] = b"\1" * (last - first + 1)
            pieces.append(text_of[pos : self.before[-1] + total])
            rests = b"".join(pieces).split(b"\n", total)[:total]
        imports = self.fam.imports if self.fam else None
        out: dict[int, str] = {}
        depth = 0  # brackets the last import left open
        for i, line in enumerate(lines):
            n = i + 1
            if not line.strip():
                out[n] = BLANK
                continue
            rest = rests[i]
            if not rest.translate(None, _NOTHING):
                kind = COMMENT if marked[i] else BLANK
                starts_import = False
            elif imports is not None and imports.match(rest):
                kind, starts_import = IMPORT, True
            else:
                kind, starts_import = CODE, False
            if starts_import or depth > 0:
                opened = _count(rest, b"([{") - _count(rest, b")]}")
                if depth > 0 and kind == CODE:
                    kind = IMPORT
                depth = max(opened if starts_import and depth == 0 else depth + opened, 0)
            out[n] = kind
        return out


def _count(text: bytes, chars: bytes) -> int:
    return len(text) - len(text.translate(None, chars))


def classify(path: str, text: bytes, lines: Iterable[int] | None = None) -> dict[int, str]:
    """{line: kind} for the given 1-based lines of text (every line when None)."""
    wanted = sorted(set(lines)) if lines is not None else None
    if wanted is not None and not wanted:
        return {}
    count = text.count(b"\n") + (not text.endswith(b"\n"))
    last = min(wanted[-1] if wanted else count, count)
    scanned = _Lines(family(path), text, last)
    if wanted is None or len(wanted) * _CONTINUATION_REACH > last:
        every = scanned.every()  # cheaper than looking back from each line
        return every if wanted is None else {n: every.get(n, BLANK) for n in wanted}
    return {n: scanned.kind(n) for n in wanted}


def at(cwd: object, rev: str, wanted: Mapping[str, Iterable[int]]) -> dict[str, dict[int, str]]:
    """{path: {line: kind}} for the given lines of files at rev, read in one git call; a
    file git cannot give (a missing object) is left out, its lines count as code."""
    paths = [p for p in wanted if _askable(p)]
    try:
        blobs = git.cat_blobs(str(cwd), (f"{rev}:{p}" for p in paths))
    except GitError:
        return {}
    return {p: classify(p, blobs[f"{rev}:{p}"], wanted[p]) for p in paths}


def _askable(path: str) -> bool:
    """Whether cat-file --batch can be asked for path: one line of UTF-8 (a name with
    other bytes keeps its lines code)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\n" not in path


def annotate(cwd: object, base: str, findings: Sequence[Finding]) -> None:
    """Set each finding's kind from its file's version at base."""
    annotate_all(cwd, [(base, findings)])


def annotate_all(cwd: object, groups: Sequence[tuple[str, Sequence[Finding]]]) -> None:
    """Set the kind of each group's findings from its files at the group's revision, all
    read in one git call (a forward walk classifies every commit's touches at once, not
    one cat-file per commit). When that call fails (an object git cannot give), each
    revision is asked on its own, and one that still fails keeps its lines code."""
    Annotation(cwd, groups).finish()


class Annotation:
    """annotate_all in two steps: with batches (a walk's one cat-file: catfile.py), the
    files are asked of git when it is made and classified by finish(), so a walk asks
    for one batch's files and replays on while git finds them. Without, finish() reads
    them (one cat-file, no thread: what a commit's check uses)."""

    def __init__(self, cwd: object, groups: Sequence[tuple[str, Sequence[Finding]]], *,
                 batches: Batches | None = None) -> None:
        self.cwd, self.groups = cwd, groups
        self.wanted: dict[tuple[str, str], list[int]] = {}
        for rev, findings in groups:
            for f in findings:
                self.wanted.setdefault((rev, f.path), []).append(f.line)
        self.specs = [key for key in self.wanted if _askable(key[1])]
        self.names = [f"{rev}:{path}" for rev, path in self.specs]
        self.reading = batches.ask(self.names) if batches is not None else None

    def finish(self) -> None:
        groups = self.groups
        try:
            blobs = (self.reading.result() if self.reading is not None
                     else git.cat_blobs(str(self.cwd), self.names))
        except GitError:
            if len({rev for rev, _ in groups}) > 1:
                for rev, findings in groups:
                    annotate_all(self.cwd, [(rev, findings)])
                return
            blobs = {}
        found = {key: classify(key[1], blobs[f"{key[0]}:{key[1]}"], self.wanted[key])
                 for key in self.specs if f"{key[0]}:{key[1]}" in blobs}
        for rev, findings in groups:
            for f in findings:
                f.kind = found.get((rev, f.path), {}).get(f.line, CODE)


def reported(
    findings: Sequence[Finding], kinds: Sequence[str], all_kinds: bool = False
) -> tuple[list[Finding], list[Finding]]:
    """(what to report, what is left out): the findings of the chosen kinds, all with
    all_kinds. Every mode of check (and anything that files tickets) decides here."""
    if all_kinds:
        return list(findings), []
    chosen = set(kinds)
    shown = [f for f in findings if f.kind in chosen]
    return shown, [f for f in findings if f.kind not in chosen]


def left_out_note(left_out: Sequence[Finding]) -> str:
    """'(3 touched comment/blank lines not reported; --all)', or '' when none."""
    if not left_out:
        return ""
    lines = {(f.path, f.line) for f in left_out}
    names = "/".join(k for k in KINDS if any(f.kind == k for f in left_out))
    return f"({len(lines)} touched {names} line{'s' * (len(lines) != 1)} not reported; --all)"


def protected_at_head(
    repo: git.Repo, cfg: Settings
) -> list[tuple[Protected, str]]:
    """Every protected line at HEAD with its kind, path order: what scan lists and stats
    counts, classified in one cat-file."""
    import sys

    from dasct import check, index

    snap = index.snapshot_at(repo, cfg, repo.head, progress=sys.stderr.isatty())
    lines = list(check.protected_lines(snap, cfg))
    wanted: dict[str, list[int]] = {}
    for x in lines:
        wanted.setdefault(x.path, []).append(x.line)
    found = at(repo.root, repo.head, wanted) if repo.head else {}
    return [(x, found.get(x.path, {}).get(x.line, CODE)) for x in lines]
