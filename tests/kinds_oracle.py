"""The oracle of src/dasct/kinds.py: each line's kind from Pygments' tokens.

A line is blank when its text is whitespace and the punctuation {}[]();, only; comment
when, besides that, its tokens are comments or docstrings (String.Doc); import when it has
an import keyword (Keyword.Namespace, an #include) or continues the brackets such a line
left open; code otherwise. Files kinds.py has no family for are lexed as plain text.
Known disagreement: Pygments 2.x takes an r-prefixed triple-quoted string at the start of
a line for a string, kinds.py (and Python's own docstring rule) for a docstring.
"""

from __future__ import annotations

import re

from pygments import lex
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Keyword, Punctuation, String, Token
from pygments.util import ClassNotFound

from dasct import kinds

_NOTHING = set("{}[]();,")
_IMPORT_WORDS = {"import", "package", "using", "use"}
_INCLUDE = re.compile(r"\s*#\s*(?:include|import)\b")


def lexer_for(path: str) -> Lexer:
    options = {"stripnl": False, "ensurenl": False}
    if kinds.family(path) is None:
        return get_lexer_by_name("text", **options)
    if path.endswith((".pl", ".pm")):  # Pygments reads .pl as Prolog first
        return get_lexer_by_name("perl", **options)
    try:
        return get_lexer_for_filename(path.rsplit("/", 1)[-1], **options)
    except ClassNotFound:
        return get_lexer_by_name("text", **options)


def oracle(path: str, text: str) -> dict[int, str]:
    """{line: kind} for every line of text, by Pygments."""
    pieces: list[list[tuple[object, str]]] = [[]]
    for kind, value in lex(text, lexer_for(path)):
        parts = value.split("\n")
        for i, part in enumerate(parts):
            if i:
                pieces.append([])
            if part:
                pieces[-1].append((kind, part))
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    out: dict[int, str] = {}
    depth = 0  # brackets an import statement left open
    for n, line in enumerate(lines, 1):
        tokens = pieces[n - 1] if n - 1 < len(pieces) else []
        code = comment = namespace = False
        for kind, value in tokens:
            if not value.strip():
                continue
            if kind in Comment.Preproc or kind in Comment.PreprocFile:
                namespace |= bool(_INCLUDE.match(line))
                code = True
            elif kind in Comment or kind in String.Doc:
                comment = True
            elif kind in Punctuation and set(value.strip()) <= _NOTHING | {" ", "\t"}:
                continue
            else:
                # `raise X from exc` has a Keyword.Namespace too: only a statement's first
                # word makes an import. Some lexers (Kotlin, Scala, Rust, Swift, TS) give
                # `import`/`use` a plain Keyword, so its word counts too.
                namespace |= not code and (kind in Keyword.Namespace or (
                    kind in Keyword and value in _IMPORT_WORDS))
                code = True
        opened = sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}")
        if not line.strip():
            out[n] = kinds.BLANK
        elif code and (namespace or depth > 0):
            out[n] = kinds.IMPORT
        elif code:
            out[n] = kinds.CODE
        else:
            out[n] = kinds.COMMENT if comment else kinds.BLANK
        if namespace and depth == 0:
            depth = max(opened, 0)
        elif depth > 0:
            depth = max(depth + opened, 0)
    return out


def agreement(path: str, text: bytes) -> list[tuple[int, str, str]]:
    """(line, oracle's kind, kinds.py's kind) of every line where they differ."""
    decoded = text.decode("utf-8", "replace")
    expected = oracle(path, decoded)
    got = kinds.classify(path, decoded.encode("utf-8"))
    return [(n, expected[n], got.get(n, "?")) for n in expected if got.get(n) != expected[n]]


__all__ = ["Token", "agreement", "oracle"]
