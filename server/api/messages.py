"""Chinese per-field validation messages, so a resident can read what to fix."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

_FIELD_MESSAGES: dict[type, dict[str, str]] = {
    fields.Field: {
        "required": "此项为必填项",
        "null": "此项不能为空",
        "validator_failed": "此项内容无效",
    },
    fields.String: {"invalid": "应为文字"},
    fields.Integer: {"invalid": "应为整数", "too_large": "数值过大"},
    fields.Float: {"invalid": "应为数字", "special": "应为有效数字"},
    fields.Decimal: {"invalid": "应为数字", "special": "应为有效数字"},
    fields.Boolean: {"invalid": "应为是或否"},
    fields.DateTime: {"invalid": "时间格式不正确", "format": "时间格式不正确"},
    fields.Date: {"invalid": "日期格式不正确（应为 YYYY-MM-DD）", "format": "日期格式不正确"},
    fields.List: {"invalid": "应为列表"},
    fields.Dict: {"invalid": "应为对象"},
    fields.Nested: {"type": "格式不正确"},
    fields.Email: {"invalid": "邮箱格式不正确"},
}


def use_chinese_messages() -> None:
    """Replace marshmallow's English defaults (called once from `register_api`)."""
    for field_cls, messages in _FIELD_MESSAGES.items():
        field_cls.default_error_messages = {**field_cls.default_error_messages, **messages}
    Schema.error_messages = {
        **getattr(Schema, "error_messages", {}),
        "unknown": "不支持的字段",
        "type": "提交的数据格式不正确",
    }
    validate.Length.message_min = "长度不能少于 {min} 个字符"
    validate.Length.message_max = "长度不能超过 {max} 个字符"
    validate.Length.message_all = "长度应在 {min} 到 {max} 个字符之间"
    validate.Length.message_equal = "长度应为 {equal} 个字符"
    # Range formats {min_op}/{max_op} in __init__, so the bounds stay escaped for later.
    validate.Range.message_min = "应{min_op} {{min}}"
    validate.Range.message_max = "应{max_op} {{max}}"
    validate.Range.message_all = "应{min_op} {{min}} 且{max_op} {{max}}"
    validate.Range.message_gte = "大于或等于"
    validate.Range.message_gt = "大于"
    validate.Range.message_lte = "小于或等于"
    validate.Range.message_lt = "小于"
    validate.OneOf.default_message = "应为以下之一：{choices}"
    validate.Regexp.default_message = "格式不正确"
