"""The pinyin name keys of the leads an import opens, tens of thousands at a time.

`matching.name_key` converts a whole name with pypinyin, about 30 µs a name, more than all the
rest an import does for a row. pypinyin itself first cuts the text into segments (runs without
Han characters, dictionary words, single characters) and converts each segment on its own; a
segment cut again is itself. So converting each distinct segment once, and joining, gives the
same key: names share a few thousand characters and words, and only the cutting is left per
name. tests/test_feeds_rules.py checks the keys against `matching.name_key`.
"""

from __future__ import annotations

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, RE_HANS
from pypinyin.seg import mmseg
from pypinyin.seg.simpleseg import seg

from server.services.leads import matching
from server.services.leads.matching import clean_name, fold_syllable


def shape_key(name: str) -> str:
    """`matching.shape_key`; a name of letters only has nothing for `clean_name` to remove."""
    if name.isalpha():
        return name.translate(matching.SHAPE_TABLE)
    return matching.shape_key(name)


class NameKeys:
    """`matching.name_key`, remembering names and each segment's folded pinyin (one per
    import)."""

    #: Names and segments remembered; each memo is emptied when full.
    LIMIT = 50_000

    def __init__(self) -> None:
        self._segments: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        key = self._names.get(name)
        if key is None:
            key = self._key(name)
            if len(self._names) >= self.LIMIT:
                self._names.clear()
            self._names[name] = key
        return key

    def _key(self, name: str) -> str:
        known = self._segments
        parts = []
        cleaned = name if name.isalpha() else clean_name(name)  # (letters: nothing to clean)
        if cleaned and PHRASES_DICT and RE_HANS.match(cleaned):
            # Han characters only (most names): `seg` would keep the whole text as one run and
            # cut it into words; do only the cutting.
            segments = mmseg.seg.cut(cleaned)
        else:
            segments = seg(cleaned)
        for segment in segments:
            folded = known.get(segment)
            if folded is None:
                folded = "".join(
                    fold_syllable(s.lower())
                    for s in lazy_pinyin(segment, style=Style.NORMAL)
                    if s.strip()
                )
                if len(known) >= self.LIMIT:
                    known.clear()
                known[segment] = folded
            parts.append(folded)
        return "".join(parts)
