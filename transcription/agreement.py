"""LocalAgreement-2: commit what two successive hypotheses of a growing buffer agree on.

A streaming recogniser re-transcribes a growing audio buffer. Each hypothesis is a list
of :class:`Token` s with times on the stream clock. The longest common prefix of the last
two hypotheses, beyond what is already committed, is stable enough to show as final; the
rest of the latest hypothesis is interim. Tokens are words for languages written with
spaces and single characters for CJK scripts; punctuation rides on the token before it.
Pure: no model, no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SENTENCE_END = frozenset(".?!。？！…")


@dataclass(frozen=True)
class Token:
    """One word (or one CJK character) with its punctuation and times in seconds."""

    text: str
    start: float
    end: float


def is_cjk(char: str) -> bool:
    """True for Han ideographs, kana and hangul: scripts written without spaces."""
    code = ord(char)
    return (
        0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FA1F
        or 0x3040 <= code <= 0x30FF
        or 0xAC00 <= code <= 0xD7AF
    )


def is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith(("P", "S")) and char not in "#$%&+@"


def key(text: str) -> str:
    """What two tokens must share to count as the same: case and punctuation ignored."""
    return "".join(c for c in text.casefold() if not is_punctuation(c) and not c.isspace())


def _pieces(word: str) -> list[str]:
    """Split a recogniser's word into tokens: CJK characters apart, punctuation attached."""
    pieces: list[str] = []
    latin = ""
    for char in word.strip():
        if char.isspace():
            if latin:
                pieces.append(latin)
                latin = ""
        elif is_cjk(char):
            if latin:
                pieces.append(latin)
                latin = ""
            pieces.append(char)
        elif is_punctuation(char) and not latin and pieces:
            pieces[-1] += char
        else:
            latin += char
    if latin:
        pieces.append(latin)
    return pieces


def tokenize(words: Iterable[tuple[str, float, float]]) -> list[Token]:
    """Turn (word, start, end) triples into tokens; CJK words share their span evenly.

    Punctuation on its own attaches to the previous token (or the next one at the start).
    """
    tokens: list[Token] = []
    leading = ""
    for text, start, end in words:
        pieces = _pieces(text)
        if not pieces:
            continue
        if all(key(p) == "" for p in pieces):
            punctuation = "".join(pieces)
            if tokens:
                last = tokens[-1]
                text = _attach(last.text, punctuation)
                tokens[-1] = Token(text, last.start, max(last.end, end))
            else:
                leading += punctuation
            continue
        step = (end - start) / len(pieces)
        for i, piece in enumerate(pieces):
            if key(piece) == "" and tokens:
                last = tokens[-1]
                tokens[-1] = Token(_attach(last.text, piece), last.start, last.end)
                continue
            tokens.append(Token(leading + piece, start + i * step, start + (i + 1) * step))
            leading = ""
    return tokens


def _attach(text: str, punctuation: str) -> str:
    """Append punctuation, skipping what the token already ends with ("end." + ".")."""
    while punctuation and text.endswith(punctuation[0]):
        punctuation = punctuation[1:]
    return text + punctuation


def join(tokens: Iterable[Token]) -> str:
    """Text of ``tokens``: spaces between words, none next to CJK characters."""
    out = ""
    for token in tokens:
        text = token.text
        if out and text and not (_cjk_edge(out[-1]) or _cjk_edge(text[0])):
            out += " "
        out += text
    return out


def _cjk_edge(char: str) -> bool:
    # full-width punctuation (U+3000-U+303F, U+FF00-U+FFEF) needs no space either
    code = ord(char)
    return is_cjk(char) or 0x3000 <= code <= 0x303F or 0xFF00 <= code <= 0xFFEF


class LocalAgreement:
    """The LocalAgreement-2 policy over successive hypotheses of one stream.

    ``insert`` takes the latest hypothesis and returns the newly committed tokens;
    ``interim`` is the uncommitted rest of that hypothesis; ``flush`` commits it all (end
    of speech). Only a short tail of committed tokens is kept, so memory stays bounded.
    """

    def __init__(self, *, max_overlap: int = 8, slack: float = 0.1, keep: int = 64) -> None:
        self._max_overlap = max_overlap
        self._slack = slack
        self._keep = keep
        self.committed: list[Token] = []  # tail of the committed tokens
        self.committed_end = float("-inf")
        self._previous: list[Token] = []

    @property
    def interim(self) -> list[Token]:
        return list(self._previous)

    def insert(self, hypothesis: Sequence[Token]) -> list[Token]:
        new = self._beyond_committed(hypothesis)
        commit: list[Token] = []
        previous = self._previous
        i = 0
        while i < len(previous) and i < len(new) and key(previous[i].text) == key(new[i].text):
            commit.append(new[i])
            i += 1
        self._previous = new[i:]
        self._commit(commit)
        return commit

    def flush(self) -> list[Token]:
        """Commit the rest of the latest hypothesis."""
        rest, self._previous = self._previous, []
        self._commit(rest)
        return rest

    def force(self, until: float) -> list[Token]:
        """Commit the interim tokens that end by ``until`` (a buffer at its size cap)."""
        commit = [t for t in self._previous if t.end <= until]
        self._previous = self._previous[len(commit) :]
        self._commit(commit)
        return commit

    def _commit(self, tokens: list[Token]) -> None:
        if tokens:
            self.committed = (self.committed + tokens)[-self._keep :]
            self.committed_end = max(self.committed_end, tokens[-1].end)

    def _beyond_committed(self, hypothesis: Sequence[Token]) -> list[Token]:
        """Drop what the committed text already covers, by time and then by n-gram overlap."""
        new = [t for t in hypothesis if t.start > self.committed_end - self._slack]
        if not new or not self.committed or abs(new[0].start - self.committed_end) > 1.0:
            return new
        tail = [key(t.text) for t in self.committed]
        head = [key(t.text) for t in new]
        for n in range(min(len(tail), len(head), self._max_overlap), 0, -1):
            if tail[-n:] == head[:n]:
                return new[n:]
        return new
