"""Reading a SQL script without running it: the statements that would break its transaction.

The engine runs each deploy, revert and verify script inside a transaction of its own, with
its bookkeeping in the same transaction. A script that opens, ends or nests a transaction
itself (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE,
PREPARE TRANSACTION) would commit half of itself and leave the bookkeeping out, so
`trigger create` refuses it and the database refuses to run it.

The scan knows what both SQLite and PostgreSQL accept around such words: quoted strings
('', E'' with backslashes, $tag$ dollar quotes), quoted identifiers, -- and nested /* */
comments, parentheses (a rule's action list), and the bodies of `CREATE TRIGGER ... BEGIN
... END` (SQLite) and `BEGIN ATOMIC ... END` (PostgreSQL), whose BEGIN and END are not
transaction control. Inside a function or DO body (a string to the parser) the words are
not looked at: PostgreSQL itself refuses COMMIT there while a transaction block is open
("invalid transaction termination"), so they cannot end the engine's transaction.
"""

from __future__ import annotations

import re
import sqlite3

_IDENT_START = r"A-Za-z_\u0080-\U0010ffff"
_IDENT_CHAR = _IDENT_START + r"0-9$"
_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
    |(?P<comment>--[^\n]*)
    |(?P<block>/\*)
    |(?P<estring>[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z))
    |(?P<string>'(?:[^']|'')*(?:'|\Z))
    |(?P<quoted>"(?:[^"]|"")*(?:"|\Z)|`[^`]*(?:`|\Z))
    |(?P<dollar>\$(?P<tag>(?:[{_IDENT_START}][{_IDENT_START}0-9]*)?)\$.*?(?:\$(?P=tag)\$|\Z))
    |(?P<word>[{_IDENT_START}][{_IDENT_CHAR}]*)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_BLOCK_EDGE = re.compile(r"/\*|\*/")
# Words that may come between CREATE and TRIGGER.
_TRIGGER_PREFIX = {"create", "or", "replace", "temp", "temporary", "constraint"}


def _statements(sql: str) -> list[tuple[list[str], int]]:
    """Each statement's leading words (lower case, at most two) and its start offset."""
    found: list[tuple[list[str], int]] = []
    words: list[str] = []  # every word of the current statement, lower case
    start = -1  # offset of the statement's first token; -1 before it
    parens = block = 0  # open parentheses; depth inside a BEGIN ... END body
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        assert m is not None  # `other` matches any character
        kind, pos = m.lastgroup, m.end()
        if kind == "space" or kind == "comment":
            continue
        if kind == "block":
            pos = _block_end(sql, pos)
            continue
        if start < 0:
            start = m.start()
        if kind == "word":
            word = m.group().lower()
            if block:
                block += {"case": 1, "end": -1}.get(word, 0)
            elif words and words[0] == "create" and _opens_body(words, word):
                block = 1
            words.append(word)
        elif kind == "other" and not block:
            char = m.group()
            parens += {"(": 1, ")": -1}.get(char, 0)
            if char == ";" and parens <= 0:
                if words or m.start() > start:
                    found.append((words[:2], start))
                words, start, parens = [], -1, 0
    if start >= 0:
        found.append((words[:2], start))
    return found


def _opens_body(words: list[str], word: str) -> bool:
    # SQLite: CREATE [TEMP] TRIGGER ... BEGIN; PostgreSQL: ... BEGIN ATOMIC (the word
    # after BEGIN decides, so the check runs on ATOMIC with BEGIN as the last word).
    if word == "begin":
        head = words[:next((i for i, w in enumerate(words) if w not in _TRIGGER_PREFIX),
                           len(words)) + 1]
        return head[-1:] == ["trigger"]
    return word == "atomic" and words[-1:] == ["begin"]


def _block_end(sql: str, pos: int) -> int:
    # PostgreSQL nests /* */ comments; an unterminated one runs to the end.
    depth = 1
    for m in _BLOCK_EDGE.finditer(sql, pos):
        depth += 1 if m.group() == "/*" else -1
        if depth == 0:
            return m.end()
    return len(sql)


def transaction_control(sql: str) -> str | None:
    """The first statement of sql that begins, ends or nests a transaction, as
    'COMMIT on line 3'; None when there is none."""
    for words, start in _statements(sql):
        first, second = [*words, "", ""][:2]
        if first in {"begin", "commit", "end", "rollback", "abort", "savepoint", "release"} or (
            first in {"start", "prepare"} and second == "transaction"
        ):
            keyword = " ".join(words).upper() if first in {"start", "prepare"} else first.upper()
            return f"{keyword} on line {sql.count(chr(10), 0, start) + 1}"
    return None


def refusal(sql: str) -> str | None:
    """Why the engine will not run sql (transaction control), in words; None if it will."""
    found = transaction_control(sql)
    if found is None:
        return None
    return (f"transaction control ({found}) is not allowed: dasct runs each script in a "
            "transaction of its own")


def sqlite_statements(sql: str) -> list[str]:
    """sql cut into SQLite statements, each ending with its ';' (the last may lack it)."""
    # Cut at each ';' that ends a complete statement (not one inside a string or a
    # CREATE TRIGGER body): several statements may share a line.
    statements, buf = [], ""
    for char in sql:
        buf += char
        if char == ";" and sqlite3.complete_statement(buf):
            if buf.strip().strip(";").strip():
                statements.append(buf)
            buf = ""
    if buf.strip():
        statements.append(buf)
    return statements
