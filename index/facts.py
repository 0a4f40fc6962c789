"""Expected answer types: a question that asks for a price, a time of day or an address
is only answered by text that contains one.

Topic similarity alone cannot tell "幼儿园有什么目标" (answered by the plan) from
"幼儿园学费多少钱" (not in the plan, though on the same topic). Classic question
answering checks the expected answer type; this module does that for the few
types parents ask about that policy plans rarely contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FactType:
    name: str
    asked: re.Pattern[str]
    present: re.Pattern[str]


FACT_TYPES: tuple[FactType, ...] = (
    FactType(
        "price",
        re.compile(r"多少钱|学费|收费标准|费用是多少|要交多少|价格|\bfees?\b|"
                   r"how much (?:does|is|are)[^.?!。？！]{0,60}(?:cost|fee)", re.I),
        re.compile(r"\d+(?:\.\d+)?\s*(?:元|万元|块)|收费标准为|每生每"),
    ),
    FactType(
        "clock_time",
        # 几点几 is a version number ("2.0"), not a time of day.
        re.compile(r"几点(?!几)|什么时[候间]到校|上课时间|放学时间|what time", re.I),
        re.compile(r"\d{1,2}\s*[:：]\s*\d{2}|\d{1,2}\s*[点时](?:\d{1,2}分|半|整)?(?!五|\d)"),
    ),
    FactType(
        "procedure",
        # How to apply/enrol/transfer: plans set goals and rarely give an office's steps.
        re.compile(r"手续|怎么(?:办理|报名|报考|申请)|如何(?:办理|报名|报考|申请)|办理流程|需要(?:带|准备|提交)什么|"
                   r"what documents|how (?:do|can) i (?:apply|register|enrol)", re.I),
        re.compile(r"办理流程|申请材料|携带|持[^，。；]{1,12}(?:到|至)|登录[^，。；]{1,20}(?:报名|申请)|报名时间为"),
    ),
    FactType(
        "address",
        re.compile(r"地址|在哪里办公|办公地点|电话|联系方式|怎么联系|\baddress\b|phone number", re.I),
        re.compile(r"[路街]\d+号|地址[:：]|电话[:：]|\d{3,4}-\d{7,8}|1\d{10}"),
    ),
)


# Asked for a number or a target: not a reason to abstain (plans are full of numbers), but the
# sentence that states one is the better quote.
QUANTITY = FactType(
    "quantity",
    re.compile(r"多少|几[所个项万岁年期届成]|目标|比例|比率|占比|how (?:many|much)|\bpercent", re.I),
    re.compile(r"\d"),
)


def expected_facts(question: str) -> tuple[FactType, ...]:
    """The answer types ``question`` asks for (usually none)."""
    return tuple(fact for fact in FACT_TYPES if fact.asked.search(question))


def states_fact(text: str, fact: FactType) -> bool:
    """Whether ``text`` contains a value of the answer type ``fact``."""
    return bool(fact.present.search(text))
