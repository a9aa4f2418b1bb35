"""Closest-match suggestions for "did you mean ...?" hints.

Kept apart from the schema stage so any stage that rejects a name (an unknown key, a
service that does not exist, a bad enum value) can offer the same kind of hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's ratio is 2*matches/total; 0.6 accepts one or two slips in a short key
# ("imgae" -> "image", "port" -> "ports") without pairing unrelated words.
_CUTOFF = 0.6


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be, or None when nothing is close.

    A case-only difference wins outright, because "Image" for "image" is the commonest
    slip and difflib would rank it no higher than any other near miss.
    """
    pool = sorted(set(candidates))
    if not pool or word in pool:
        return None
    by_folded: dict[str, str] = {}
    for candidate in pool:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = word.casefold()
    if folded in by_folded:
        return by_folded[folded]
    found = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=_CUTOFF)
    return by_folded[found[0]] if found else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A hint such as ``did you mean "image"?``, or "" when there is nothing to suggest."""
    match = closest(word, candidates)
    return f'did you mean "{match}"?' if match is not None else ""
