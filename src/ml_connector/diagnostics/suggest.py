""" "Did you mean ...?" for a misspelt field, option, project or priority name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The choice most like ``word`` (case ignored), or None when none is close enough."""
    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(choice.casefold(), choice)
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``did you mean 'X'?`` for the closest choice, else "" (also when ``word`` is itself a choice)."""
    match = closest(word, choices)
    return f"did you mean {match!r}?" if match is not None and match != word else ""


def with_suggestion(text: str, word: str, choices: Iterable[str]) -> str:
    """``text`` followed by "; did you mean 'X'?" when some choice is close to ``word``."""
    suggestion = did_you_mean(word, choices)
    return f"{text}; {suggestion}" if suggestion else text
