"""Is this report about someone already in the queue? Chinese names, phones and villages.

Hotline operators, 110 and volunteers often pass on a name they *heard* (张/章, 林/凌), or one
written in a hurry with a look-alike character (王/玉, 己/已), or in traditional characters
(陳/陈). A pure rule module: plain values in, a score with its reasons out; the queries that
fetch candidate leads live in services/leads/core.py and use the keys computed here.

Score (0–100), the parts added together:

| what | points | reason shown |
|---|---|---|
| the same name | 60 | 姓名相同 |
| the same after folding look-alike characters | 50 | 姓名形近：王→玉 |
| the same toneless pinyin | 50 | 姓名同音：zhang san |
| the same pinyin after dialect folding (zh/z, l/n, -ng/-n) | 40 | 姓名读音相近：... |
| same length and surname, one given-name character different | 25 | 姓名仅一字不同 |
| the same phone number (keyed hash) | 35 | 联系电话相同 |
| the same village | 15 | 同一村居 |
| otherwise the same town | 5 | 同一镇街 |

Two different ID numbers are two people: score 0. A pair scoring at least `THRESHOLD` is offered
to staff as a candidate; staff decide (merge or keep apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

THRESHOLD = 40

#: Groups of characters easily confused in handwriting, on forms and between character sets.
#: The first character of each group is the canonical one.
LOOK_ALIKE_GROUPS: tuple[str, ...] = (
    "王玉壬",
    "己已巳",
    "未末",
    "土士",
    "日曰",
    "人入八",
    "天夭",
    "田由甲申",
    "晴睛",
    "辨辩",
    "侯候",
    "戊戌戍",
    "李季",
    "刁刀",
    "午牛",
    "贝见",
    "休体",
    "大太犬",
    "兔免",
    "鸟乌",
    "拔拨",
    "栋楝",
    "淋琳",
    "秀透",
    "洁浩",
    "娟涓",
    "丽郦",
    "卫韦",
    "华桦",
    "芳方",
    # Traditional → simplified forms seen in older records and printed forms.
    "张張",
    "陈陳",
    "刘劉",
    "杨楊",
    "赵趙",
    "吴吳",
    "孙孫",
    "郑鄭",
    "冯馮",
    "韩韓",
    "许許",
    "邓鄧",
    "萧蕭",
    "叶葉",
    "苏蘇",
    "卢盧",
    "蒋蔣",
    "贾賈",
    "丁玎",
    "国國",
    "华華",
    "军軍",
    "兰蘭",
    "凤鳳",
    "红紅",
    "梅楳",
    "丽麗",
    "伟偉",
    "强強",
    "明朙",
)

_SHAPE: dict[str, str] = {ch: group[0] for group in LOOK_ALIKE_GROUPS for ch in group[1:]}
#: The look-alike folds as a `str.translate` table (public: the importer's name keys use it).
SHAPE_TABLE = str.maketrans(_SHAPE)

#: Dialect and hearing folds applied to toneless pinyin syllables.
_INITIAL_FOLDS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"), ("r", "n"), ("f", "h"))
_FINAL_FOLDS = (("ang", "an"), ("eng", "en"), ("ing", "in"), ("ong", "on"))


@lru_cache(maxsize=65536)
def syllables(name: str) -> tuple[str, ...]:
    """Toneless pinyin syllables of a name, `张三` → ("zhang", "san"); Latin letters kept."""
    cleaned = clean_name(name)
    return tuple(s.lower() for s in lazy_pinyin(cleaned, style=Style.NORMAL) if s.strip())


def pinyin(name: str) -> str:
    """`张三` → `zhang san`."""
    return " ".join(syllables(name))


def fold_syllable(syllable: str) -> str:
    """One toneless syllable with the dialect and hearing folds: `zhang` → `zan`."""
    for old, new in _INITIAL_FOLDS:
        if syllable.startswith(old):
            syllable = new + syllable[len(old) :]
            break
    for old, new in _FINAL_FOLDS:
        if syllable.endswith(old):
            syllable = syllable[: -len(old)] + new
            break
    return syllable


def name_key(name: str) -> str:
    """The coarse sound of a name for lookups: `张凌` and `章林` share `zannin`.

    Also folds a pinyin query typed by staff (`zhangling`) when it is one run of letters: there
    the syllables are unknown, so only the whole-string folds apply (see `query_key`).
    """
    return "".join(fold_syllable(s) for s in syllables(name))


def query_key(text: str) -> str:
    """Fold a Latin-letter name search (`zhang`, `Zhang San`) the way `name_key` folds names."""
    words = [w for w in text.lower().split() if w]
    return "".join(fold_syllable(w) for w in words)


def shape_key(name: str) -> str:
    """The name with look-alike and traditional characters folded: `玉秀英` → `王秀英`."""
    return clean_name(name).translate(SHAPE_TABLE)


def clean_name(name: str) -> str:
    """The name without spaces and middle dots (`阿卜杜·热合曼`), as every key folds it."""
    return "".join(ch for ch in name.strip() if not ch.isspace() and ch not in "·•．.")


@dataclass(frozen=True, slots=True)
class Person:
    """What a report or a lead says about a person (hashes only, never clear-text numbers)."""

    name: str
    person_hash: str | None = None
    phone_hash: str | None = None
    town_id: int | None = None
    village_id: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_candidate(self) -> bool:
        return self.score >= THRESHOLD


def compare(report: Person, candidate: Person) -> Match:
    """How likely `report` and `candidate` are the same person, and why."""
    if report.person_hash and candidate.person_hash:
        if report.person_hash == candidate.person_hash:
            return Match(100, ("身份证号相同",))
        return Match(0, ("身份证号不同",))
    reasons: list[str] = []
    score = 0
    name_points, name_reason = compare_names(report.name, candidate.name)
    if name_points:
        score += name_points
        reasons.append(name_reason)
    if report.phone_hash and report.phone_hash == candidate.phone_hash:
        score += 35
        reasons.append("联系电话相同")
    if report.village_id and report.village_id == candidate.village_id:
        score += 15
        reasons.append("同一村居")
    elif report.town_id and report.town_id == candidate.town_id:
        score += 5
        reasons.append("同一镇街")
    return Match(min(score, 100), tuple(reasons))


def compare_names(a: str, b: str) -> tuple[int, str]:
    """Points for how alike two names are, with the reason in Chinese; (0, "") if unalike."""
    ca, cb = clean_name(a), clean_name(b)
    if not ca or not cb:
        return 0, ""
    if ca == cb:
        return 60, "姓名相同"
    if shape_key(ca) == shape_key(cb):
        pairs = "、".join(f"{x}→{y}" for x, y in zip(ca, cb, strict=False) if x != y)
        return 50, f"姓名形近：{pairs}"
    sa, sb = syllables(ca), syllables(cb)
    if sa == sb:
        return 50, f"姓名同音：{' '.join(sa)}"
    if name_key(ca) == name_key(cb):
        return 40, f"姓名读音相近：{' '.join(sa)} / {' '.join(sb)}"
    if len(ca) == len(cb) >= 2 and ca[0] == cb[0]:
        differing = sum(1 for x, y in zip(ca, cb, strict=True) if x != y)
        if differing == 1:
            return 25, "姓名仅一字不同"
    return 0, ""
