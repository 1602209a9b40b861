"""OData v4 syntax: errors, property types, the ``$filter`` tokenizer, its tree and its recursive-descent parser.

Values are typed Python objects: ``str`` (strings and enum members), ``int``, ``float`` (decimals), ``bool``,
``datetime.date`` (Edm.Date) and aware ``datetime.datetime`` (Edm.DateTimeOffset).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------------------------
# Errors


class ODataError(Exception):
    """A refused query: ``status`` and IFS ``code`` become the error response."""

    def __init__(self, message: str, *, status: int = 400, code: str = "ODP_UNSUPPORTED_URL") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def _syntax(text: str, pos: int, why: str) -> ODataError:
    return ODataError(f"Malformed Request: syntax error at position {pos} in '{text}': {why}")


# --------------------------------------------------------------------------------------------------------------
# Types of properties and literals

STRING, INT, DECIMAL, BOOL, DATE, DATETIME, ENUM, NULL = (
    "string",
    "int",
    "decimal",
    "bool",
    "date",
    "datetime",
    "enum",
    "null",
)
NUMERIC = frozenset({INT, DECIMAL})


@dataclass(frozen=True)
class PropType:
    """The type of a property as the filter compiler sees it; ``enum`` is the qualified enum type name."""

    kind: str
    enum: str | None = None
    members: tuple[str, ...] = ()


def edm_name(kind: str) -> str:
    return {
        STRING: "Edm.String",
        INT: "Edm.Int32",
        DECIMAL: "Edm.Decimal",
        BOOL: "Edm.Boolean",
        DATE: "Edm.Date",
        DATETIME: "Edm.DateTimeOffset",
        NULL: "null",
    }.get(kind, kind)


# --------------------------------------------------------------------------------------------------------------
# Tokenizer

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,12})?)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\w:.-])", re.ASCII)
_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?([mMdDfFlL])?(?![\w.])", re.ASCII)
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", re.ASCII)


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, date, datetime, enum, lparen, rparen, comma, eq (the '=' sign), end
    value: Any
    pos: int
    text: str = ""


def parse_datetime(text: str) -> dt.datetime:
    m = _DATETIME_RE.fullmatch(text)
    if not m:
        raise ValueError(f"not a DateTimeOffset: {text!r}")
    return _datetime_from_match(m).astimezone(dt.UTC)


def _datetime_from_match(m: re.Match[str]) -> dt.datetime:
    """The literal with the offset it was written with (its digits matter where IFS reads them as wall time)."""
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    frac = m.group(7)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = m.group(8)
    if zone == "Z":
        tz = dt.UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else _bad_date(text)


def _bad_date(text: str) -> dt.date:
    raise ValueError(f"not a Date: {text!r}")


def tokenize(text: str) -> list[Token]:
    """Split an OData expression into tokens. A doubled quote inside a string literal is one quote."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c == "(":
            tokens.append(Token("lparen", c, i))
            i += 1
        elif c == ")":
            tokens.append(Token("rparen", c, i))
            i += 1
        elif c == ",":
            tokens.append(Token("comma", c, i))
            i += 1
        elif c == "=":
            tokens.append(Token("eq", c, i))
            i += 1
        elif c == "'":
            value, i = read_string(text, i)
            tokens.append(Token("string", value, i))
        elif c.isdigit() or (c == "-" and i + 1 < n and text[i + 1].isdigit()):
            start = i
            if m := _DATETIME_RE.match(text, i):
                try:
                    tokens.append(Token("datetime", _datetime_from_match(m), start, m.group(0)))
                except ValueError as exc:
                    raise _syntax(text, start, f"invalid DateTimeOffset literal ({exc})") from None
                i = m.end()
            elif m := _DATE_RE.match(text, i):
                try:
                    tokens.append(Token("date", dt.date.fromisoformat(m.group(0)), start, m.group(0)))
                except ValueError as exc:
                    raise _syntax(text, start, f"invalid Date literal ({exc})") from None
                i = m.end()
            elif m := _NUMBER_RE.match(text, i):
                lexeme = m.group(0)
                body = lexeme.rstrip("mMdDfFlL")
                is_decimal = bool(m.group(1) or m.group(2)) or lexeme[-1:] in "mMdDfF"
                number: int | float = float(body) if is_decimal else int(body)
                tokens.append(Token("number", number, start, lexeme))
                i = m.end()
            else:
                raise _syntax(text, start, "invalid number, date or datetime literal")
        elif c.isalpha() or c == "_":
            m = IDENT_RE.match(text, i)
            assert m is not None
            name = m.group(0)
            start = i
            i = m.end()
            if i < n and text[i] == "'":  # typed literal: IfsApp.Projection.EnumType'Member'
                value, i = read_string(text, i)
                tokens.append(Token("enum", (name, value), start, text[start:i]))
            else:
                tokens.append(Token("ident", name, start, name))
        else:
            raise _syntax(text, i, f"unexpected character {c!r}")
    tokens.append(Token("end", None, n))
    return tokens


def read_string(text: str, i: int) -> tuple[str, int]:
    start = i
    i += 1
    parts: list[str] = []
    n = len(text)
    while True:
        j = text.find("'", i)
        if j < 0:
            raise _syntax(text, start, "unterminated string literal")
        parts.append(text[i:j])
        if j + 1 < n and text[j + 1] == "'":
            parts.append("'")
            i = j + 2
            continue
        return "".join(parts), j + 1


def quote_string(value: str) -> str:
    """The OData string literal for ``value`` (doubling single quotes)."""
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True)
class Literal:
    value: Any
    kind: str
    enum: str | None = None  # qualified enum type for enum literals


@dataclass(frozen=True)
class Prop:
    name: str
    pos: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Literal | Prop | Call | Compare | BoolOp | Not

COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_UNSUPPORTED_OPERATORS = frozenset({"has", "in", "add", "sub", "mul", "div", "divby", "mod"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, tok: Token, *words: str) -> bool:
        return tok.kind == "ident" and tok.value in words

    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise _syntax(self.text, tok.pos, f"unexpected {tok.text or tok.value!r}")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.is_word(self.peek(), "or"):
            self.take()
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.comparison()
        while self.is_word(self.peek(), "and"):
            self.take()
            node = BoolOp("and", node, self.comparison())
        return node

    def comparison(self) -> Node:
        left = self.unary()
        tok = self.peek()
        if self.is_word(tok, *COMPARISONS):
            self.take()
            right = self.unary()
            after = self.peek()
            if self.is_word(after, *COMPARISONS):
                raise _syntax(self.text, after.pos, "comparisons cannot be chained; use 'and'")
            return Compare(tok.value, left, right)
        if self.is_word(tok, *_UNSUPPORTED_OPERATORS):
            raise ODataError(
                f"The operator '{tok.value}' is not supported in $filter", code="ODP_NOT_IMPLEMENTED", status=501
            )
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if self.is_word(tok, "not"):
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "lparen":
            node = self.or_expr()
            close = self.take()
            if close.kind != "rparen":
                raise _syntax(self.text, close.pos, "expected ')'")
            return node
        if tok.kind == "string":
            return Literal(tok.value, STRING)
        if tok.kind == "number":
            return Literal(tok.value, DECIMAL if isinstance(tok.value, float) else INT)
        if tok.kind == "date":
            return Literal(tok.value, DATE)
        if tok.kind == "datetime":
            return Literal(tok.value, DATETIME)
        if tok.kind == "enum":
            qualified, member = tok.value
            return Literal(member, ENUM, qualified)
        if tok.kind == "ident":
            name = tok.value
            if name == "null":
                return Literal(None, NULL)
            if name in ("true", "false"):
                return Literal(name == "true", BOOL)
            if self.peek().kind == "lparen":
                self.take()
                args: list[Node] = []
                if self.peek().kind != "rparen":
                    args.append(self.or_expr())
                    while self.peek().kind == "comma":
                        self.take()
                        args.append(self.or_expr())
                close = self.take()
                if close.kind != "rparen":
                    raise _syntax(self.text, close.pos, "expected ')' after function arguments")
                return Call(name, tuple(args), tok.pos)
            if name in COMPARISONS or name in ("and", "or"):
                raise _syntax(self.text, tok.pos, f"operand expected before '{name}'")
            if "." in name:
                raise _syntax(self.text, tok.pos, f"'{name}' is neither a property nor a typed literal")
            return Prop(name, tok.pos)
        what = "end of expression" if tok.kind == "end" else repr(tok.text or tok.value)
        raise _syntax(self.text, tok.pos, f"operand expected, found {what}")


def parse_filter(text: str) -> Node:
    if not text.strip():
        raise ODataError("Malformed Request: empty $filter")
    return _Parser(text).parse()
