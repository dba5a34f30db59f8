"""The twelve department feeds of the 2021 work plan: who sends what, when, and in which columns.

Each feed lists the fields it needs with the Chinese header names departments actually use; center
staff may add aliases and change the threshold (stored in `FeedSetting`, merged in `effective`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from decimal import Decimal


class Cadence(enum.StrEnum):
    EVENT = "event"  # 3 working days after the event
    WEEKLY = "weekly"  # every Monday (last week's data)
    MONTHLY = "monthly"  # by the 5th of each month (last month's data)
    YEARLY = "yearly"  # by the end of December (this year's data)


class Kind(enum.StrEnum):
    """How a cell is normalised and checked (see services/feeds/normalise.py)."""

    NAME = "name"
    ID = "id"
    DATE = "date"
    AMOUNT = "amount"
    YEAR = "year"
    GRADE = "grade"
    TEXT = "text"
    PHONE = "phone"


class OnRoster(enum.StrEnum):
    """What a row about someone already on the roster (receiving 低保/特困/...) becomes."""

    #: A lead for the special aid the feed points at (medical, education, disaster...), not 低保.
    SPECIAL_AID = "special_aid"
    #: Nothing: the person is already covered (counted as `already_covered`).
    COVERED = "covered"
    #: The row updates the roster itself (civil_affairs_new).
    ROSTER = "roster"


@dataclass(frozen=True)
class Column:
    field: str
    label: str
    kind: Kind
    aliases: tuple[str, ...]
    required: bool = True


@dataclass(frozen=True)
class Feed:
    code: str
    name: str
    department: str  # Department.code (services/places/areas.DEPARTMENTS)
    cadence: Cadence
    due_rule: str  # plain Chinese
    columns: tuple[Column, ...]
    #: Lead categories (services/leads/core.CATEGORIES) every accepted row brings.
    categories: tuple[str, ...] = ()
    #: Extra categories only for people *not* on the roster (e.g. 低保 for a big hospital bill).
    categories_off_roster: tuple[str, ...] = ()
    on_roster: OnRoster = OnRoster.SPECIAL_AID
    #: The special aid suggested for a roster member (医疗救助, 教育救助, 灾后救助...).
    special_aid: str | None = None
    #: Short department label used in priority reasons ("医保: 单次自付 ¥32,400").
    reason_prefix: str = ""
    priority: int = 1
    #: Field compared with the threshold (≥ threshold qualifies) and the default in yuan.
    threshold_field: str | None = None
    threshold: Decimal | None = None
    #: Once-per-period rule code (a ledger row per person and period), e.g. yearly rules.
    period_rule: str | None = None
    #: Field holding the event date (drives evidence dates and the rule's period).
    date_field: str | None = None

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.field == name)

    @property
    def id_optional(self) -> bool:
        """Rows may come without an ID number (then a name and a phone or an address)."""
        return not self.column("id_number").required


_NAME = Column("name", "姓名", Kind.NAME, ("姓名", "名字", "人员姓名", "患者姓名", "参保人姓名"))
_ID = Column(
    "id_number",
    "身份证号",
    Kind.ID,
    (
        "身份证号",
        "身份证号码",
        "公民身份号码",
        "证件号码",
        "身份证",
        "证件号",
        "社会保障号码",
        "身份证件号码",
    ),
)
#: Feeds whose rows rarely carry an ID number (complaints, online help): a row without one is
#: accepted when it names the person and gives a phone number or an address, and opens a lead
#: without an ID number that goes through candidate matching like a hotline report.
_ID_OPTIONAL = replace(_ID, required=False)
_PHONE = Column(
    "phone",
    "联系电话",
    Kind.PHONE,
    ("联系电话", "电话", "手机号", "手机号码", "联系方式", "电话号码", "来电号码"),
    False,
)
_ADDRESS = Column(
    "address",
    "住址",
    Kind.TEXT,
    ("住址", "家庭住址", "地址", "现住址", "居住地址", "详细地址"),
    False,
)
_TOWN = Column(
    "town", "镇街", Kind.TEXT, ("镇街", "所属镇街", "镇（街道）", "乡镇街道", "镇办"), False
)
_VILLAGE = Column("village", "村居", Kind.TEXT, ("村居", "村（社区）", "村社区", "所属村居"), False)
_AREA = (_TOWN, _VILLAGE)


def _date(field_name: str, label: str, *aliases: str, required: bool = True) -> Column:
    return Column(field_name, label, Kind.DATE, (label, *aliases), required)


def _text(field_name: str, label: str, *aliases: str, required: bool = False) -> Column:
    return Column(field_name, label, Kind.TEXT, (label, *aliases), required)


def _amount(field_name: str, label: str, *aliases: str, required: bool = True) -> Column:
    return Column(field_name, label, Kind.AMOUNT, (label, *aliases), required)


_EVENT_DUE = "事件发生后3个工作日内"
_WEEKLY_DUE = "每周一报送上周数据"
_MONTHLY_DUE = "每月5日前报送上月数据"
_YEARLY_DUE = "每年12月底前报送当年数据"

_OOP_ALIASES = (
    "个人负担合规费用",
    "个人负担合规医疗费用",
    "政策范围内个人自付",
    "个人自付金额",
    "自付金额",
    "个人负担金额",
    "合规自付费用",
)

FEEDS: tuple[Feed, ...] = (
    Feed(
        code="online_help",
        name="网络求助线索",
        department="propaganda",
        cadence=Cadence.EVENT,
        due_rule=_EVENT_DUE,
        columns=(
            _NAME,
            _ID_OPTIONAL,
            _date("event_date", "发布日期", "求助日期", "发现日期", "日期"),
            _text("content", "求助内容", "线索内容", "内容摘要", "情况说明"),
            _PHONE,
            _ADDRESS,
            *_AREA,
        ),
        categories=("temporary",),
        categories_off_roster=("dibao",),
        special_aid="临时救助",
        reason_prefix="网络求助",
        priority=2,
        date_field="event_date",
    ),
    Feed(
        code="disaster",
        name="因灾因事故困难人员",
        department="emergency",
        cadence=Cadence.EVENT,
        due_rule=_EVENT_DUE,
        columns=(
            _NAME,
            _ID,
            _date("event_date", "发生日期", "受灾日期", "事故日期", "日期"),
            _text("event_type", "灾害类型", "事故类型", "灾种"),
            _amount("loss", "损失金额", "直接经济损失", "经济损失（元）", required=False),
            *_AREA,
        ),
        categories=("disaster",),
        categories_off_roster=("temporary",),
        special_aid="灾后救助",
        reason_prefix="应急",
        priority=3,
        date_field="event_date",
    ),
    Feed(
        code="traffic_accident",
        name="交通事故伤亡人员",
        department="traffic_police",
        cadence=Cadence.EVENT,
        due_rule=_EVENT_DUE,
        columns=(
            _NAME,
            _ID,
            _date("event_date", "事故日期", "事故发生日期", "发生日期", "日期"),
            _text("injury", "伤亡情况", "伤亡类型", "人员伤亡情况", required=True),
            *_AREA,
        ),
        categories=("accident",),
        categories_off_roster=("temporary",),
        special_aid="临时救助",
        reason_prefix="交警",
        priority=3,
        date_field="event_date",
    ),
    Feed(
        code="fire",
        name="火灾较大损失人员",
        department="fire_rescue",
        cadence=Cadence.EVENT,
        due_rule=_EVENT_DUE,
        columns=(
            _NAME,
            _ID,
            _date("event_date", "火灾日期", "起火日期", "发生日期", "日期"),
            _amount("loss", "损失金额", "直接经济损失", "经济损失（元）", "财产损失"),
            *_AREA,
        ),
        categories=("disaster",),
        categories_off_roster=("temporary",),
        special_aid="灾后救助",
        reason_prefix="消防",
        priority=3,
        date_field="event_date",
    ),
    Feed(
        code="disability_new",
        name="新认定残疾人员",
        department="disabled_federation",
        cadence=Cadence.WEEKLY,
        due_rule=_WEEKLY_DUE,
        columns=(
            _NAME,
            _ID,
            _text("disability_type", "残疾类别", "残疾类型", required=False),
            Column("grade", "残疾等级", Kind.GRADE, ("残疾等级", "等级", "残疾级别")),
            _date("event_date", "认定日期", "发证日期", "办证日期", "日期"),
            *_AREA,
        ),
        categories=("disabled",),
        categories_off_roster=("dibao",),
        special_aid="残疾人两项补贴",
        reason_prefix="残联",
        priority=2,
        date_field="event_date",
    ),
    Feed(
        code="civil_affairs_new",
        name="新纳入低保特困孤困儿童临时救助人员",
        department="civil_affairs",
        cadence=Cadence.WEEKLY,
        due_rule=_WEEKLY_DUE,
        columns=(
            _NAME,
            _ID,
            _text("programme", "救助类别", "保障类别", "救助类型", "类别", required=True),
            _date("event_date", "批准日期", "纳入日期", "审批日期", "日期", required=False),
            *_AREA,
        ),
        on_roster=OnRoster.ROSTER,
        reason_prefix="民政",
        priority=0,
        date_field="event_date",
    ),
    Feed(
        code="complaints",
        name="市民投诉家庭困难人员",
        department="complaint_center",
        cadence=Cadence.WEEKLY,
        due_rule=_WEEKLY_DUE,
        columns=(
            _NAME,
            _ID_OPTIONAL,
            _date("event_date", "投诉日期", "来电日期", "受理日期", "日期"),
            _text("content", "诉求内容", "投诉内容", "反映问题", "内容摘要"),
            _PHONE,
            _ADDRESS,
            *_AREA,
        ),
        categories=("temporary",),
        categories_off_roster=("dibao",),
        special_aid="临时救助",
        reason_prefix="投诉中心",
        priority=1,
        date_field="event_date",
    ),
    Feed(
        code="hospital_oop",
        name="区属医院大额自付住院人员",
        department="health",
        cadence=Cadence.MONTHLY,
        due_rule=_MONTHLY_DUE,
        columns=(
            _NAME,
            _ID,
            _text("hospital", "医疗机构", "医院名称", "就诊医院", "医院"),
            _date("event_date", "入院日期", "入院时间"),
            _date("discharge_date", "出院日期", "出院时间", required=False),
            _amount("oop", "个人负担合规费用", *_OOP_ALIASES),
            *_AREA,
        ),
        categories=("illness",),
        categories_off_roster=("dibao",),
        special_aid="医疗救助",
        reason_prefix="卫健",
        priority=3,
        threshold_field="oop",
        threshold=Decimal(20000),
        date_field="event_date",
    ),
    Feed(
        code="insurance_oop",
        name="医保大额自付住院人员",
        department="medical_insurance",
        cadence=Cadence.MONTHLY,
        due_rule=_MONTHLY_DUE,
        columns=(
            _NAME,
            _ID,
            _text("hospital", "医疗机构", "定点医疗机构", "医院名称", "就诊医院", "医院"),
            _date("event_date", "入院日期", "入院时间"),
            _date("discharge_date", "出院日期", "出院时间", "结算日期", required=False),
            _amount("oop", "个人负担合规费用", *_OOP_ALIASES),
            *_AREA,
        ),
        categories=("illness",),
        categories_off_roster=("dibao",),
        special_aid="医疗救助",
        reason_prefix="医保",
        priority=3,
        threshold_field="oop",
        threshold=Decimal(20000),
        date_field="event_date",
    ),
    Feed(
        code="relapse_watch",
        name="返贫动态监测线索",
        department="poverty_alleviation",
        cadence=Cadence.MONTHLY,
        due_rule=_MONTHLY_DUE,
        columns=(
            _NAME,
            _ID,
            _date("event_date", "走访日期", "监测日期", "反馈日期", "日期"),
            _text("risk", "风险类型", "返贫风险", "致贫返贫风险", "主要困难"),
            *_AREA,
        ),
        categories=("poverty_relapse",),
        categories_off_roster=("dibao",),
        on_roster=OnRoster.COVERED,
        reason_prefix="扶贫办",
        priority=2,
        date_field="event_date",
    ),
    Feed(
        code="education_aid",
        name="申请教育资助学生",
        department="education",
        cadence=Cadence.YEARLY,
        due_rule=_YEARLY_DUE,
        columns=(
            Column("name", "学生姓名", Kind.NAME, ("学生姓名", "姓名", "名字")),
            _ID,
            _text("school", "学校", "就读学校", "学校名称"),
            _date("event_date", "申请日期", "申请时间", "日期", required=False),
            *_AREA,
        ),
        categories=("education",),
        categories_off_roster=("dibao",),
        special_aid="教育救助",
        reason_prefix="教体",
        priority=1,
        date_field="event_date",
    ),
    Feed(
        code="insurance_annual_oop",
        name="年度累计大额自付人员",
        department="medical_insurance",
        cadence=Cadence.YEARLY,
        due_rule=_YEARLY_DUE,
        columns=(
            _NAME,
            _ID,
            Column("year", "年度", Kind.YEAR, ("年度", "统计年度", "年份"), False),
            _amount(
                "oop",
                "年度累计个人负担合规费用",
                "累计个人负担合规费用",
                "累计自付金额",
                "年度累计自付",
                "累计个人负担",
                *_OOP_ALIASES,
            ),
            *_AREA,
        ),
        categories=("illness",),
        categories_off_roster=("dibao",),
        special_aid="医疗救助",
        reason_prefix="医保",
        priority=3,
        threshold_field="oop",
        threshold=Decimal(40000),
        period_rule="annual_oop_40k",
    ),
)

BY_CODE: dict[str, Feed] = {f.code: f for f in FEEDS}


def effective(
    feed: Feed, *, aliases: dict[str, list[str]] | None, threshold: Decimal | None
) -> Feed:
    """The feed with center staff's extra aliases and threshold applied."""
    columns = feed.columns
    if aliases:
        columns = tuple(
            replace(
                c,
                aliases=(*c.aliases, *[a for a in aliases.get(c.field, []) if a not in c.aliases]),
            )
            for c in feed.columns
        )
    return replace(
        feed,
        columns=columns,
        threshold=threshold if threshold is not None and feed.threshold_field else feed.threshold,
    )
