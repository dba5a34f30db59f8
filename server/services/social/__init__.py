"""The social forces (社会力量): volunteer teams, social organisations and enterprises.

This package owns the organisations the center registers (`orgs`: name, kind, contact, the
towns served; members invited by a one-time code like village helpers, role `volunteer`), the
leads their members report (`reports`: through the same intake as every report,
`services/leads/intake.register_report`, and read back only by whoever reported them, in plain
words),
donations (`donations`: received, receipted, allocated to households or a fund, the public
summary) and services given to households (`services`: 家境调查, 人文关怀, 心理疏导, 资源链接,
能力提升, 社会融入).
"""
