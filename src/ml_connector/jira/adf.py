"""Plain text → Atlassian Document Format (ADF) for ``description`` and multi-line custom fields.

Rules Jira enforces that plain strings violate: the root is ``{"type": "doc", "version": 1}``; a ``text`` node must
hold at least one character; a line break is a ``hardBreak`` node, never ``\\n`` inside text.

Conventions: a blank line separates paragraphs; a single newline is a hard break; lines starting with ``- ``, ``* ``
or ``• `` form a bullet list; ``http(s)://`` URLs become links.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Node = dict[str, Any]

_BULLET = re.compile(r"^\s*[-*\u2022]\s+(.*)$")
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING_PUNCT = ".,;:!?)]}'\""
# C0 controls other than tab/newline and DEL are not valid in ADF text; Jira refuses some of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def text_node(text: str, *, href: str | None = None) -> Node:
    if not text:
        raise ValueError("ADF text nodes must not be empty")
    node: Node = {"type": "text", "text": text}
    if href:
        node["marks"] = [{"type": "link", "attrs": {"href": href}}]
    return node


def inline_nodes(line: str) -> list[Node]:
    """Text and link nodes for one line; empty for an empty line (never an empty text node)."""
    if "://" not in line:  # no URL: most lines, without the scan
        return [{"type": "text", "text": line}] if line else []
    nodes: list[Node] = []
    pos = 0
    for match in _URL.finditer(line):
        url = match.group(0).rstrip(_TRAILING_PUNCT)
        start, end = match.start(), match.start() + len(url)
        if len(url) <= len("https://"):
            continue
        if start > pos:
            nodes.append(text_node(line[pos:start]))
        nodes.append(text_node(url, href=url))
        pos = end
    if pos < len(line):
        nodes.append(text_node(line[pos:]))
    return nodes


def paragraph(lines: list[str]) -> Node | None:
    """A paragraph whose lines are joined by hard breaks; None when there is no visible content."""
    content: list[Node] = []
    for line in lines:
        parts = inline_nodes(line)
        if not parts:
            continue
        if content:
            content.append({"type": "hardBreak"})
        content.extend(parts)
    if not content:
        return None
    return {"type": "paragraph", "content": content}


def bullet_list(items: list[str]) -> Node | None:
    list_items = []
    for item in items:
        para = paragraph([item])
        if para is not None:
            list_items.append({"type": "listItem", "content": [para]})
    if not list_items:
        return None
    return {"type": "bulletList", "content": list_items}


def doc(content: list[Node]) -> Node:
    return {"type": "doc", "version": 1, "content": content}


def text_to_adf(text: str | None) -> Node:
    """Convert plain text to an ADF document (an empty document for empty or blank text)."""
    if not text:
        return doc([])
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    blocks: list[Node] = []
    plain: list[str] = []
    bullets: list[str] = []

    def flush(lines: list[str], build: Callable[[list[str]], Node | None]) -> None:
        """End the run of plain lines or bullets collected so far as one block."""
        if lines:
            node = build(lines)
            if node is not None:
                blocks.append(node)
            lines.clear()

    for line in text.split("\n"):
        if not line.strip():
            flush(plain, paragraph)
            flush(bullets, bullet_list)
            continue
        bullet = _BULLET.match(line)
        if bullet:
            flush(plain, paragraph)
            bullets.append(bullet.group(1))
        else:
            flush(bullets, bullet_list)
            plain.append(line)
    flush(plain, paragraph)
    flush(bullets, bullet_list)
    return doc(blocks)


def adf_to_text(node: Node | None) -> str:
    """Best-effort inverse of :func:`text_to_adf` (content hashing, previews, tests)."""
    if not node:
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    children = node.get("content") or []
    if kind == "doc":
        return "\n\n".join(adf_to_text(child) for child in children)
    if kind == "bulletList":
        return "\n".join("- " + adf_to_text(child) for child in children)
    return "".join(adf_to_text(child) for child in children)


def iter_text_nodes(node: Node) -> list[Node]:
    """Every text node in a document (tests use it to prove none is empty)."""
    found: list[Node] = []
    if node.get("type") == "text":
        found.append(node)
    for child in node.get("content") or []:
        found.extend(iter_text_nodes(child))
    return found
