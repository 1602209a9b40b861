"""JQL lexer and parser: text to a tree of clauses (``parse``), with Jira's syntax error messages.

Unquoted strings may not contain reserved characters; quoted strings accept Jira's escape sequences only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class JqlError(Exception):
    """Bad JQL; the message is the errorMessages entry Jira would return."""


OPERATORS_HELP = (
    "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."
)
DATE_HELP = (
    "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', "
    "or a period format e.g. '-5d', '4w 2d'."
)
KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}


# --------------------------------------------------------------------------------------------------------- lexer
@dataclass(frozen=True)
class Tok:
    kind: str  # WORD, STR, OP, LP, RP, COMMA, END
    text: str
    pos: int  # 1-based character position

    @property
    def lower(self) -> str:
        return self.text.lower() if self.kind == "WORD" else ""


_WORD = re.compile(r"[\w\-]+(?:\[[^\]]*\])?(?:\.[\w\-]+(?:\[[^\]]*\])?)*")
_OPS = ("!=", "!~", "<=", ">=", "&&", "||", "=", "~", "<", ">", "!", "&", "|")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", " ": " "}


def _where(pos: int) -> str:
    return f"(line 1, character {pos})"


def _syntax(message: str, pos: int | None = None) -> JqlError:
    """A parse error worded like Jira's, with its position."""
    where = "" if pos is None else " " + _where(pos)
    return JqlError(f"Error in the JQL Query: {message}{where}")


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        pos = i + 1
        if ch in "()":
            toks.append(Tok("LP" if ch == "(" else "RP", ch, pos))
            i += 1
            continue
        if ch == ",":
            toks.append(Tok("COMMA", ch, pos))
            i += 1
            continue
        if ch in "\"'":
            quote, j, out = ch, i + 1, []
            while True:
                if j >= n:
                    raise _syntax(f"The quoted string '{text[i + 1 :]}' has not been completed.", pos)
                c = text[j]
                if c == quote:
                    break
                if c == "\\":
                    nxt = text[j + 1] if j + 1 < n else ""
                    if nxt in _ESCAPES:
                        out.append(_ESCAPES[nxt])
                        j += 2
                        continue
                    if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[j + 2 : j + 6]):
                        out.append(chr(int(text[j + 2 : j + 6], 16)))
                        j += 6
                        continue
                    raise _syntax(
                        f"'\\{nxt}' is an illegal JQL escape sequence. The valid escape "
                        f"sequences are \\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX.",
                        j + 1,
                    )
                out.append(c)
                j += 1
            toks.append(Tok("STR", "".join(out), pos))
            i = j + 1
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            toks.append(Tok("OP", op, pos))
            i += len(op)
            continue
        m = _WORD.match(text, i)
        if m:
            toks.append(Tok("WORD", m.group(0), pos))
            i = m.end()
            continue
        raise _syntax(
            f"The character '{ch}' is a reserved JQL character. You must enclose it in a "
            f"string or use the escape '\\u{ord(ch):04x}' instead.",
            pos,
        )
    toks.append(Tok("END", "", n + 1))
    return toks


# --------------------------------------------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Lit:
    text: str
    quoted: bool
    pos: int


@dataclass(frozen=True)
class Func:
    name: str
    args: tuple[str, ...]
    pos: int


@dataclass(frozen=True)
class Empty:
    pos: int


Operand = Lit | Func | Empty | tuple[Lit | Func, ...]

# The predicates of a history search (``status CHANGED AFTER "..." BY x``), per the JQL operator reference
# (https://support.atlassian.com/jira-software-cloud/docs/jql-operators/#CHANGED).
HISTORY_PREDICATES = ("after", "before", "on", "during", "by", "from", "to")


@dataclass(frozen=True)
class History:
    """The predicates of a ``CHANGED`` clause, in order: (name, value); DURING's value is a pair."""

    predicates: tuple[tuple[str, Lit | Func | tuple[Lit | Func, ...]], ...]


@dataclass(frozen=True)
class Clause:
    field: str
    op: str  # lower case: =, !=, ~, !~, <, <=, >, >=, in, not in, is, is not, changed
    value: Operand | History
    pos: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    items: tuple[Node, ...]


@dataclass(frozen=True)
class NotOp:
    item: Node


Node = Clause | BoolOp | NotOp


@dataclass(frozen=True)
class Query:
    where: Node | None
    order: tuple[tuple[str, bool], ...]  # (field, descending)


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "WORD" and self.tok.lower in words

    def parse(self) -> Query:
        where: Node | None = None
        if not self.is_kw("order") and self.tok.kind != "END":
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.is_kw("order"):
            self.take()
            if not self.is_kw("by"):
                raise _syntax(f"Expecting 'by' but got '{self.tok.text}'.", self.tok.pos)
            self.take()
            while True:
                tok = self.take()
                if tok.kind not in ("WORD", "STR") or tok.lower in KEYWORDS:
                    raise _syntax(f"Expecting a field name but got '{tok.text or 'the end'}'.", tok.pos)
                desc = False
                if self.is_kw("asc", "desc"):
                    desc = self.take().lower == "desc"
                order.append((tok.text, desc))
                if self.tok.kind != "COMMA":
                    break
                self.take()
        if self.tok.kind != "END":
            tok = self.tok
            raise _syntax(f"Expecting either 'OR' or 'AND' but got '{tok.text}'.", tok.pos)
        if len(order) > 7:
            raise JqlError("The ORDER BY clause can contain at most 7 fields.")
        return Query(where, tuple(order))

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_kw("or") or (self.tok.kind == "OP" and self.tok.text in ("||", "|")):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_kw("and") or (self.tok.kind == "OP" and self.tok.text in ("&&", "&")):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(self) -> Node:
        if self.is_kw("not") or (self.tok.kind == "OP" and self.tok.text == "!"):
            self.take()
            return NotOp(self.not_expr())
        if self.tok.kind == "LP":
            self.take()
            node = self.or_expr()
            if self.tok.kind != "RP":
                if self.tok.kind == "END":
                    raise _syntax("Expecting ')' before the end of the query.")
                raise _syntax(f"Expecting ')' but got '{self.tok.text}'.", self.tok.pos)
            self.take()
            return node
        return self.clause()

    def clause(self) -> Clause:
        tok = self.take()
        if tok.kind == "END":
            raise _syntax("Expecting a field name before the end of the query.")
        if tok.kind not in ("WORD", "STR") or (tok.kind == "WORD" and tok.lower in KEYWORDS):
            raise _syntax(
                f"Expecting a field name but got '{tok.text}'. You must surround "
                f"'{tok.text}' in quotation marks to use it as a field name.",
                tok.pos,
            )
        op = self.operator()
        value = self.operand(op)
        return Clause(tok.text, op, value, tok.pos)

    def operator(self) -> str:
        tok = self.tok
        if tok.kind == "OP" and tok.text in ("=", "!=", "~", "!~", "<", "<=", ">", ">="):
            self.take()
            return tok.text
        if self.is_kw("in"):
            self.take()
            return "in"
        if self.is_kw("changed"):
            self.take()
            return "changed"
        if self.is_kw("is"):
            self.take()
            if self.is_kw("not"):
                self.take()
                return "is not"
            return "is"
        if self.is_kw("not"):
            self.take()
            if self.is_kw("in"):
                self.take()
                return "not in"
            tok = self.tok
        if tok.kind == "END":
            raise _syntax(f"Expecting operator before the end of the query. {OPERATORS_HELP}")
        raise _syntax(f"Expecting operator but got '{tok.text}'. {OPERATORS_HELP}", tok.pos)

    def history(self) -> History:
        predicates: list[tuple[str, Lit | Func | tuple[Lit | Func, ...]]] = []
        while self.is_kw(*HISTORY_PREDICATES):
            name = self.take().lower
            if name != "during":
                value = self.single()
                if isinstance(value, Empty):
                    raise _syntax(f"EMPTY is not allowed after '{name.upper()}'.", value.pos)
                predicates.append((name, value))
                continue
            pair = self.operand("in")  # DURING ("date1", "date2"): a list of exactly two
            assert isinstance(pair, tuple)
            if len(pair) != 2:
                raise _syntax("DURING takes exactly two dates.", pair[0].pos)
            predicates.append((name, pair))
        return History(tuple(predicates))

    def operand(self, op: str) -> Operand | History:
        if op == "changed":
            return self.history()
        if op in ("in", "not in"):
            if self.tok.kind != "LP":
                raise _syntax(f"Expecting '(' but got '{self.tok.text or 'the end'}'.", self.tok.pos)
            self.take()
            items: list[Lit | Func] = []
            while True:
                item = self.single()
                if isinstance(item, Empty):
                    raise _syntax("EMPTY is not allowed in a list.", item.pos)
                items.append(item)
                if self.tok.kind == "COMMA":
                    self.take()
                    continue
                if self.tok.kind == "RP":
                    self.take()
                    return tuple(items)
                raise _syntax(f"Expecting ')' but got '{self.tok.text or 'the end'}'.", self.tok.pos)
        return self.single()

    def single(self) -> Lit | Func | Empty:
        tok = self.take()
        if tok.kind == "STR":
            return Lit(tok.text, True, tok.pos)
        if tok.kind == "WORD":
            if tok.lower in ("empty", "null"):
                return Empty(tok.pos)
            if tok.lower in KEYWORDS:
                raise _syntax(
                    f"Expecting either a value, list or function but got '{tok.text}'. You "
                    f"must surround '{tok.text}' in quotation marks to use it as a value.",
                    tok.pos,
                )
            if self.tok.kind == "LP":
                self.take()
                args: list[str] = []
                while self.tok.kind in ("WORD", "STR", "COMMA"):
                    t = self.take()
                    if t.kind != "COMMA":
                        args.append(t.text)
                if self.tok.kind != "RP":
                    raise _syntax(f"Expecting ')' but got '{self.tok.text}'.", self.tok.pos)
                self.take()
                return Func(tok.text, tuple(args), tok.pos)
            return Lit(tok.text, False, tok.pos)
        if tok.kind == "END":
            raise _syntax("Expecting either a value, list or function before the end of the query.")
        raise _syntax(f"Expecting either a value, list or function but got '{tok.text}'.", tok.pos)


def parse(text: str) -> Query:
    return _Parser(text).parse()
