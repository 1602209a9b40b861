"""A structural validator for Atlassian Document Format, strict where Jira is strict (node types, empty text)."""

from __future__ import annotations

from typing import Any

NOT_A_DOCUMENT = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
INVALID_CONTENT = "The field value is not valid Atlassian Document Format (ADF) content."

_BLOCK = {
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "codeBlock",
    "blockquote",
    "rule",
    "panel",
    "table",
    "mediaSingle",
    "mediaGroup",
    "expand",
    "taskList",
    "decisionList",
}
_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status"}
_MARKS = {"strong", "em", "code", "link", "strike", "underline", "subsup", "textColor", "backgroundColor"}
# Which child node types each container accepts.
_CHILDREN: dict[str, set[str]] = {
    "doc": _BLOCK,
    "paragraph": _INLINE,
    "heading": _INLINE,
    "codeBlock": {"text"},
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": {"paragraph", "bulletList", "orderedList", "codeBlock", "mediaSingle"},
    "blockquote": {"paragraph", "bulletList", "orderedList", "codeBlock"},
    "panel": {"paragraph", "heading", "bulletList", "orderedList"},
    "table": {"tableRow"},
    "tableRow": {"tableHeader", "tableCell"},
    "tableHeader": _BLOCK - {"table"},
    "tableCell": _BLOCK - {"table"},
    "expand": _BLOCK - {"expand"},
    "mediaSingle": {"media"},
    "mediaGroup": {"media"},
    "taskList": {"taskItem"},
    "taskItem": _INLINE,
    "decisionList": {"decisionItem"},
    "decisionItem": _INLINE,
}
_LEAVES = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "rule", "media"}


def validate_adf(value: Any) -> str | None:
    """Return Jira's error message for ``value``, or None when it is a valid ADF document."""
    if not isinstance(value, dict) or value.get("type") != "doc":
        return NOT_A_DOCUMENT
    if value.get("version") != 1 or not isinstance(value.get("content"), list):
        return INVALID_CONTENT
    return None if _valid_children(value, "doc") else INVALID_CONTENT


def _valid_children(node: dict[str, Any], node_type: str) -> bool:
    content = node.get("content", [])
    if not isinstance(content, list):
        return False
    allowed = _CHILDREN.get(node_type, set())
    return all(isinstance(child, dict) and child.get("type") in allowed and _valid_node(child) for child in content)


def _valid_node(node: dict[str, Any]) -> bool:
    kind = node["type"]
    if kind == "text":
        text = node.get("text")
        if not isinstance(text, str) or not text:  # Jira rejects empty text nodes
            return False
        marks = node.get("marks", [])
        if not isinstance(marks, list):
            return False
        for mark in marks:
            if not isinstance(mark, dict) or mark.get("type") not in _MARKS:
                return False
            if mark["type"] == "link" and not isinstance((mark.get("attrs") or {}).get("href"), str):
                return False
        return set(node) <= {"type", "text", "marks"}
    if kind == "heading":
        level = (node.get("attrs") or {}).get("level")
        if not isinstance(level, int) or not 1 <= level <= 6:
            return False
    if kind == "mention" and not isinstance((node.get("attrs") or {}).get("id"), str):
        return False
    if kind == "inlineCard" and not isinstance((node.get("attrs") or {}).get("url"), str):
        return False
    if kind in _LEAVES:
        return "content" not in node
    if kind in {"listItem", "bulletList", "orderedList", "table", "tableRow"} and not node.get("content"):
        return False
    return _valid_children(node, kind)


def adf_text(value: Any) -> str:
    """Plain text of an ADF document, for ``~`` searches on description."""
    if isinstance(value, dict):
        parts: list[str] = []
        if value.get("type") == "text" and isinstance(value.get("text"), str):
            parts.append(value["text"])
        for child in value.get("content") or []:
            parts.append(adf_text(child))
        return " ".join(p for p in parts if p)
    return ""
