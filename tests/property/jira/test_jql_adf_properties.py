"""Property tests for the pure parts: JQL literals parse back to the exact value; ADF never has empty text."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.jira import jql
from ml_connector.jira.adf import adf_to_text, iter_text_nodes, text_to_adf

_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "'": "'", "\\": "\\", " ": " "}


def read_literal(source: str, pos: int) -> tuple[str, int]:
    """Reference reader for one double-quoted JQL string (the JQL lexer's escape rules); returns (value, end)."""
    assert source[pos] == '"'
    out: list[str] = []
    i = pos + 1
    while True:
        char = source[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":
            nxt = source[i + 1]
            if nxt == "u":
                out.append(chr(int(source[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_UNESCAPE[nxt])
            i += 2
            continue
        assert char not in "\n\r"
        out.append(char)
        i += 1


@given(st.text())
def test_quote_round_trips_and_ends_where_it_should(value: str) -> None:
    quoted = jql.quote(value)
    parsed, end = read_literal(quoted, 0)
    assert parsed == value
    assert end == len(quoted)


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4))
def test_in_clause_keeps_each_value_separate(values: list[str]) -> None:
    clause = jql.in_("labels", values)
    assert clause.startswith("labels in (") and clause.endswith(")")
    pos = len("labels in (")
    parsed = []
    for n in range(len(values)):
        value, pos = read_literal(clause, pos)
        parsed.append(value)
        if n < len(values) - 1:
            assert clause[pos : pos + 2] == ", "
            pos += 2
    assert parsed == values and clause[pos:] == ")"


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@given(_text)
def test_adf_never_has_empty_text_nodes_or_newlines(value: str) -> None:
    doc = text_to_adf(value)
    assert doc["type"] == "doc" and doc["version"] == 1
    for node in iter_text_nodes(doc):
        assert node["text"]
        assert "\n" not in node["text"] and "\r" not in node["text"]


@given(st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.]{0,20}", fullmatch=True), min_size=1, max_size=5))
def test_adf_keeps_visible_words(lines: list[str]) -> None:
    text = "\n".join(lines)
    words = re.findall(r"\S+", text)
    assert re.findall(r"\S+", adf_to_text(text_to_adf(text))) == words
