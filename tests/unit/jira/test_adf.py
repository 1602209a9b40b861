from __future__ import annotations

from ml_connector.jira.adf import adf_to_text, iter_text_nodes, text_to_adf


def test_paragraphs_hard_breaks_and_lists() -> None:
    doc = text_to_adf("First line\nsecond line\n\n- one\n* two\n\nTail")
    assert doc["type"] == "doc" and doc["version"] == 1
    para, bullets, tail = doc["content"]
    assert para == {
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "First line"},
            {"type": "hardBreak"},
            {"type": "text", "text": "second line"},
        ],
    }
    assert bullets["type"] == "bulletList"
    assert [item["content"][0]["content"][0]["text"] for item in bullets["content"]] == ["one", "two"]
    assert tail["content"][0]["text"] == "Tail"


def test_links_become_link_marks_without_trailing_punctuation() -> None:
    doc = text_to_adf("See https://example.com/po/42. Thanks")
    nodes = doc["content"][0]["content"]
    assert nodes[0] == {"type": "text", "text": "See "}
    assert nodes[1] == {
        "type": "text",
        "text": "https://example.com/po/42",
        "marks": [{"type": "link", "attrs": {"href": "https://example.com/po/42"}}],
    }
    assert nodes[2] == {"type": "text", "text": ". Thanks"}


def test_empty_and_blank_text_give_an_empty_document() -> None:
    for text in ("", None, "\n\n  \n", "-  \n*  \n\x00"):
        assert text_to_adf(text) == {"type": "doc", "version": 1, "content": []}
    # a lone marker without a space is text, not an empty bullet
    assert adf_to_text(text_to_adf("*")) == "*"


def test_no_empty_text_nodes_with_crlf_and_control_characters() -> None:
    doc = text_to_adf("a\r\n\r\n\x00\x07\r\nb\x1b")
    assert all(node["text"] for node in iter_text_nodes(doc))
    assert adf_to_text(doc) == "a\n\nb"


def test_round_trip_text() -> None:
    text = "Order PO-1\nSupplier ACME\n\n- line 1\n- line 2"
    assert adf_to_text(text_to_adf(text)) == text
