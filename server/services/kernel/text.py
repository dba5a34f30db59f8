"""The one rule for text we accept, from any channel (API body, query, path, console form,
department file, village list): no control characters, no lone surrogates, no bidi overrides,
no zero-width or other invisible format characters.

Such characters are never typed by a person on purpose. They break the database (PostgreSQL
refuses NUL; a lone surrogate cannot be encoded), the spreadsheets we write, the terminal of an
operator reading the logs (ANSI escapes start with ESC, a control character) and the reader of a
name (a right-to-left override makes `张三‮1234` read backwards; a zero-width space makes two
identical-looking names differ). Tab, line feed and carriage return are allowed in multi-line
text (notes, summaries); single-line text (names, codes, addresses) refuses them too.

`find_forbidden` is the pure rule; `check_text` raises the one validation error, with a Chinese
message naming the field; `api/guards.py` applies it to every string of every API request and the
schemas, the console's forms and the file loaders call the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from server.errors import ValidationFailed

#: C0 controls except tab/LF/CR, DEL, C1 controls; lone surrogates; zero-width and invisible
#: format characters (U+200B–U+200F, U+2060–U+2064, U+FEFF, soft hyphen, Mongolian vowel
#: separator); bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, U+061C);
#: line/paragraph separators (they end a line in JavaScript); interlinear annotation and the
#: non-characters U+FFFE/U+FFFF. The zero-width joiner is the one exception, between two emoji
#: (see `_joins_emoji`).
_FORBIDDEN = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\ud800-\udfff"
    "\u00ad\u061c\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\ufffe\uffff"
)
_MULTI_LINE = re.compile(f"[{_FORBIDDEN}]")
_SINGLE_LINE = re.compile(f"[{_FORBIDDEN}\t\n\r]")

_ZWJ = "\u200d"
_VARIATION_SELECTOR = "\ufe0f"
#: Emoji code points (Unicode's Extended_Pictographic, by block, and the emoji modifiers
#: U+1F3FB–U+1F3FF that follow one): what a zero-width joiner may stand between.
_EMOJI = re.compile(
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21ff\u2300-\u23ff\u24c2"
    "\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff]"
)


def _joins_emoji(value: str, index: int) -> bool:
    """The zero-width joiner at `index` is part of an emoji sequence (👨‍👩‍👧, ❤️‍🔥): an emoji
    (perhaps followed by the emoji variation selector U+FE0F) before it, an emoji after it.
    A person types these; anywhere else the joiner is invisible and refused."""
    before = index - 1
    if before >= 0 and value[before] == _VARIATION_SELECTOR:
        before -= 1
    return (
        before >= 0
        and index + 1 < len(value)
        and _EMOJI.match(value, before) is not None
        and _EMOJI.match(value, index + 1) is not None
    )


#: Chinese names of the fields people fill in most, for the message; others are named by key.
FIELD_LABELS: Mapping[str, str] = {
    "name": "姓名",
    "applicant_name": "申请人姓名",
    "village_name": "村（社区）名称",
    "note": "备注",
    "notes": "备注",
    "summary": "情况说明",
    "reason": "原因",
    "address": "住址",
    "phone": "电话",
    "id_number": "身份证号",
    "relation": "关系",
    "title": "标题",
    "body": "正文",
    "content": "内容",
    "message": "内容",
    "instructions": "办理要求",
    "result": "办理结果",
    "outcome_note": "结果说明",
    "needs": "需求",
    "health": "健康状况",
    "hardship": "困难程度",
    "causes": "致困原因",
    "comment": "评价",
    "q": "搜索内容",
    "town": "镇街",
    "village": "村（社区）",
    "code": "编码",
    "username": "用户名",
    "password": "密码",
    "new_password": "新密码",
    "display_name": "显示名称",
    "unit_code": "承办单位",
    "feed": "数据来源",
    "file": "文件",
}


def label(field: str) -> str:
    """The field's Chinese name for messages: its own label, the last part of a dotted path's
    label (`members.0.name` → 姓名), or the key itself."""
    if field in FIELD_LABELS:
        return FIELD_LABELS[field]
    parts = [p for p in field.split(".") if not p.isdigit()]
    if parts and parts[-1] in FIELD_LABELS:
        return FIELD_LABELS[parts[-1]]
    return field


def find_forbidden(value: str, *, single_line: bool = False) -> tuple[int, str] | None:
    """(index, character) of the first character the rule refuses, or None."""
    pattern = _SINGLE_LINE if single_line else _MULTI_LINE
    found = pattern.search(value)
    while found is not None and found.group() == _ZWJ and _joins_emoji(value, found.start()):
        found = pattern.search(value, found.end())
    return None if found is None else (found.start(), found.group())


def describe(value: str, *, field: str, single_line: bool = False) -> str | None:
    """The Chinese message for `value` in `field`, or None when the text is acceptable."""
    found = find_forbidden(value, single_line=single_line)
    if found is None:
        return None
    index, char = found
    if char in "\t\n\r":
        return f"“{label(field)}”只能填写一行，请删除换行符或制表符"
    return (
        f"“{label(field)}”含有无法显示的控制字符或不可见字符"
        f"（第{index + 1}个字符，U+{ord(char):04X}），请删除后重新填写"
    )


class TextRefused(ValidationFailed):
    code = "text_invalid"


def check_text(value: str, *, field: str, single_line: bool = False) -> str:
    """`value` when the rule accepts it; else `TextRefused` naming `field` (422)."""
    message = describe(value, field=field, single_line=single_line)
    if message is not None:
        raise TextRefused(message, errors={field: [message]})
    return value


def refused(problems: Mapping[str, str]) -> TextRefused:
    """One error for several refused fields: the first one's message on top, all by field."""
    first = next(iter(problems.values()))
    return TextRefused(first, errors={k: [v] for k, v in problems.items()})


def is_plain(value: Any, *, single_line: bool = False) -> bool:
    return not isinstance(value, str) or find_forbidden(value, single_line=single_line) is None
