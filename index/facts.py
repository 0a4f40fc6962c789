"""Expected answer types: a question that asks for a price, a time of day or an address
is only answered by text that contains one.

Topic similarity alone cannot tell "幼儿园有什么目标" (answered by the plan) from
"幼儿园学费多少钱" (not in the plan, though on the same topic). Classic question
answering checks the expected answer type; this module does that for the types
parents ask about that policy documents often do not contain: a price, a time, a date,
a year, a count, a duration, a frequency, an age, a score line, a rate, a named person, a
procedure, a phone number or an address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.numerals import CN_NUMERAL, normalize_numerals
from index.sentences import split_sentences


@dataclass(frozen=True)
class FactType:
    name: str
    asked: re.Pattern[str]
    present: re.Pattern[str]


# Each type fires only on a real request for the fact: 收费标准 or 学费 alone asks about the rule
# (a law's fee article answers it), 学费多少钱 asks for a figure. ``present`` reads text whose
# Chinese numerals are already digits (see :func:`states_fact`).
# How long (多久, 几个月 …), shared by the duration and the frequency types; …一次 within the clause
# makes it a frequency (多久联系一次).
# 好几年, 这几个, 前几天, 接收了几个: "a few", told not asked; 哪几 asks which ones
_NOT_HOW_MANY = r"(?<![哪了好这那前少])"
_UNITS_OF_TIME = "天|年|个月|周|星期|小时|钟头|分钟|学期|学时|课时"
_HOW_LONG = rf"(?:多久|多长时间|{_NOT_HOW_MANY}(?:几|多少)个?(?:{_UNITS_OF_TIME})(?!级|岁))"
_ONCE = r"[^，。？?！!]{0,10}一次"

#: A figure of any kind, the last of :data:`FACT_TYPES`: asked only when no type with a unit is
#: (``学费多少钱`` asks for a price, which needs more than a figure).
AMOUNT = FactType(
    "amount",
    # Any other "how many / how much" (多少节课, 多少米, 百分之多少, 给多少, 第几届): the typed ones
    # name the common units, this one needs no list of them. 几乎 is "almost"; 几年级 asks for a
    # stage of school, 几月几号 and 几点 for a date or a time.
    re.compile(rf"{_NOT_HOW_MANY}(?:多少(?!少)|几(?![乎何时月号日点]|年级))|\bhow (?:many|much)\b", re.I),
    # a figure that is not a year, a date or an article's number (第十二条); 每月300元 is one
    re.compile(r"(?<![\d.])(?<!\d月)(?!(?:19|20)\d{2}\s*年)\d+(?:\.\d+)?(?![\d.]|\s*(?:月\s*\d|条|章))|"
               rf"第[{CN_NUMERAL}]+(?![条章])|(?<![一统进唯单同])[二两三四五六七八九十百千]+(?=[届期成倍遍])"),
)

FACT_TYPES: tuple[FactType, ...] = (
    FactType(
        "price",
        # money asked for: a fee, a salary, an allowance, a budget
        re.compile(r"多少钱|(?:学费|收费|费用|价格|保教费|保育费|伙食费|工资|薪资|薪水|补贴|补助|奖金|经费|资金|投入)"
                   r"[^，。？?！!]{0,8}(?:多少|几)|(?:多少|几)(?:亿|万)元?|要交多少|交多少|"
                   r"how much (?:does|is|are|do)[^.?!。？！]{0,60}(?:cost|fee|charge|pay)", re.I),
        re.compile(r"\d+(?:\.\d+)?\s*(?:元|万元|亿元|块)|收费标准为|每生每|[（(](?:万元|亿元|元)[）)][^。]{0,40}?\d"),
    ),
    FactType(
        "clock_time",
        # 几点几 is a version number ("2.0"), not a time of day.
        re.compile(r"几点(?!几)|什么时[候间]到校|上课时间|放学时间|what time", re.I),
        re.compile(r"\d{1,2}\s*[:：]\s*\d{2}|\d{1,2}\s*[点时](?:\d{1,2}分|半|整)?(?!五|\d)"),
    ),
    FactType(
        "date",
        # the day of an event (报名, 开学, 放假, 考试): a law's 六周岁 answers 什么时候上学, not these
        re.compile(r"几月几[号日]|几号(?!楼|线)|哪一?天|具体日期|什么日期|截止日期|"
                   r"(?:什么|啥)时[候间](?:开始|截止)?(?:报名|开学|放假|放|考试|考|截止|填报|公布|出成绩)|"
                   r"(?:报名|开学|放假|考试|截止)(?:时间|日期)|what date|when (?:is|does|do)\b", re.I),
        re.compile(r"\d{1,2}\s*月\s*\d{1,2}\s*[日号]|\d{4}\s*[-./年]\s*\d{1,2}"),
    ),
    FactType(
        "year",
        # the year of an event (哪年建成, 什么时候开始招生): answered by text naming a year (到2025年)
        re.compile(r"哪一?年(?!级)|(?:什么|啥)时[候间](?:能|会|才|可以|开始)?(?:建成|建好|完工|竣工|动工|开工|投用|"
                   r"招生|开园|开办|推开|推广|实施|施行|出台)|what year|which year", re.I),
        re.compile(r"(?:19|20)\d{2}\s*年"),
    ),
    FactType(
        "count",
        re.compile(rf"{_NOT_HOW_MANY}(?:多少|几)(?:所|家|个|名|人|项|座|间|位|科|门|次|万个|万人)(?!月|年级|小时|钟头|星期|学期)"
                   r"|how many(?! (?:minutes|hours|days|weeks|months|years)\b)", re.I),
        re.compile(r"\d+(?:\.\d+)?\s*万?(?:所|家|个|名|人|项|座|间|位|科|门|次|余)|"
                   r"[（(]万?(?:所|家|个|名|人|项|座|间|位|次)(?:/[^）)]{0,4})?[）)][^。]{0,40}?\d"),
    ),
    FactType(
        "duration",
        # …一次 after it asks how often (a frequency, below), not how long
        re.compile(rf"{_HOW_LONG}(?!{_ONCE})|how long|how many (?:minutes|hours|days|weeks|months|years)\b", re.I),
        # a year (2020年) or a day of a month (9月10日) is not a length of time
        re.compile(r"(?<![\d.月])(?!(?:19|20)\d{2}\s*年)\d+(?:\.\d+)?\s*(?:天|日|个月|年|周|小时|分钟|学时|课时)"),
    ),
    FactType(
        "frequency",
        # 多久联系一次: answered by 每周 or 每3个月一次
        re.compile(rf"{_HOW_LONG}{_ONCE}|how often", re.I),
        re.compile(r"每(?:\d+\s*个?)?(?:天|日|周|星期|月|年|学期)|\d+\s*(?:天|周|个月|年)一次"),
    ),
    FactType(
        "age",
        # an age asked (几岁上学, 多大能入园): answered by text stating one (六周岁 reads 6周岁)
        re.compile(r"几岁|几周岁|多少岁|多少周岁|多大(?:年龄|岁数|年纪)|多大(?:才|就)?(?:能|可以)?(?:上|读|入)|年龄[^，。？?！!]{0,4}(?:多少|几)|"
                   r"what age|how old", re.I),
        re.compile(r"\d+\s*(?:周岁|岁)"),
    ),
    FactType(
        "score_line",
        re.compile(r"分数线|录取分|(?:多少|几)分(?!钟)|最低分|控制线|满分"),
        re.compile(r"\d{1,3}\s*分(?!之)"),
    ),
    FactType(
        "rate",
        # a share asked for (升学率多少, 占比是多少): answered by a percentage or a ratio (生师比
        # 13:1), not by a score
        re.compile(r"上线率|升学率|录取率|(?:率|比例|占比|比重)[^，。？?！!]{0,6}(?:多少|几成)|百分之几"),
        # a table row gives its unit once, in the label: 入园率（%） | 2025目标: 99.8
        re.compile(r"\d+(?:\.\d+)?\s*%|\d+\s*成|\d+\s*[:：比]\s*\d+|[（(]%[）)][^。]{0,40}?\d"),
    ),
    FactType(
        "person",
        # 校长是谁？ asks for a name; 校长是谁来聘的 asks who appoints one (an authority a law names)
        re.compile(r"(?:校长|园长|局长|主任|负责人|联系人)(?:是谁|叫什么)(?=[啊呀呢啦？?！!。，,\s]|$)|叫什么名字|"
                   r"who is the", re.I),
        re.compile(r"(?:校长|园长|局长|主任|负责人|联系人)[:：]?\s*[\u4e00-\u9fff]{2,3}(?:同志)?[，,。；\s]|"
                   r"[\u4e00-\u9fff]{2,3}同志"),
    ),
    FactType(
        "procedure",
        # How to apply/enrol/transfer: plans set goals and rarely give an office's steps.
        # 手续 only when its steps or place are asked (啥手续, 怎么办…手续, 去哪里办), not when mentioned
        re.compile(r"(?:什么|啥|哪些)手续|手续(?:怎么|如何|去哪|在哪)|(?:怎么|如何)[^，。？?！!]{0,10}手续|"
                   r"(?:去|在|到)哪[里儿]?办|(?:怎么|如何)(?:办理|报名|报考|申请|考|注册|登录)|流程|"
                   r"(?:需要|要)(?:带|准备|提交|交)(?:什么|哪些)(?:材料|证件|资料|手续)?|"
                   r"what documents|how (?:do|can) i (?:apply|register|enrol)", re.I),
        # a notice lists them after a colon (所需材料：…, 报名程序：…)
        re.compile(r"办理流程|申请材料|携带|持[^，。；]{1,12}(?:到|至)|登录[^，。；]{1,20}(?:报名|申请)|报名时间为|"
                   r"(?:材料|证件|程序|步骤|流程)[:：]"),
    ),
    FactType(
        "website",
        # where online (哪个网站 / APP / 小程序, 去哪里查): answered by an address or an app's name,
        # which laws and plans do not give
        re.compile(r"哪个(?:网站|网址|APP|小程序|公众号|平台)|(?:去|在|到)哪[里儿]?查|网址|\bwebsite\b", re.I),
        re.compile(r"https?://|www\.|\.(?:cn|com|org)\b|网址[:：]|(?:公众号|小程序|APP)[“\"「]", re.I),
    ),
    FactType(
        "phone",
        re.compile(r"电话|联系方式|热线|怎么联系|phone number|hotline", re.I),
        re.compile(r"\d{3,4}-\d{7,8}|(?<!\d)1\d{10}(?!\d)|(?<!\d)123\d\d(?!\d)|电话[:：]"),
    ),
    FactType(
        "address",
        re.compile(r"地址|在哪里办公|办公地点|在哪儿办|\baddress\b", re.I),
        re.compile(r"[路街]\d+号|地址[:：]"),
    ),
    AMOUNT,
)


# A yes/no question ("…分几个班，法律上允许吗？") asks whether a rule allows something, not for the
# fact; so does one ending in a verb and 不 (网上能办不).
_YES_NO = re.compile(r"(?:吗|(?<![什怎这那多])么|能不能|可不可以|是否|行不行|对不对|合法|违法|允许|正常|"
                     r"[能会可行是要办对]不)[？?！!。\s]*$")


def expected_facts(question: str) -> tuple[FactType, ...]:
    """The answer types ``question`` asks for (usually none), sentence by sentence: each asks on its
    own ("保教费最多收多少钱？我们这边收1800正常吗" asks for a price, then whether 1800 is normal; the
    second does not make the first a yes/no question)."""
    asking = [s.text for s in split_sentences(question) if not _YES_NO.search(s.text)]
    asked = tuple(fact for fact in FACT_TYPES if any(fact.asked.search(s) for s in asking))
    specific = tuple(f for f in asked if f is not AMOUNT)
    return specific or asked


def states_fact(text: str, fact: FactType) -> bool:
    """Whether ``text`` contains a value of the answer type ``fact`` (三十日 counts as 30天)."""
    return bool(fact.present.search(normalize_numerals(text)))
