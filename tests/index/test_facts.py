"""index.facts: answer-type checks fire only on a real request for the fact."""

import pytest

from index.facts import expected_facts, states_fact


def _names(question: str) -> list[str]:
    return [f.name for f in expected_facts(question)]


@pytest.mark.parametrize(("question", "expected"), [
    ("幼儿园学费多少钱", ["price"]),
    ("一中录取分数线多少", ["score_line"]),
    ("今年新建几所学校", ["count"]),
    ("义务教育几年", ["duration"]),
    ("你们校长是谁", ["person"]),
    ("教育局电话多少", ["phone"]),
    ("几月几号开学", ["date"]),
    ("how many schools will be built", ["count"]),
    ("孩子几岁上小学", ["age"]),
    ("孩子多大能上幼儿园", ["age"]),
    ("新校区哪一年建成", ["year"]),
    ("什么时候开始招生", ["year"]),
    ("户外活动每天要几个小时", ["duration"]),
    ("一个班有几个老师", ["count"]),
    ("孩子满几周岁入学", ["age"]),                       # 几周岁 is an age, not a number of weeks
    ("要等几周", ["duration"]),
    ("多久要跟孩子联系一次", ["frequency"]),              # …一次: how often, not how long
    ("网课一节课几分钟", ["duration"]),                  # minutes: a length of time, not a score (几分)
    ("how many hours of training a year", ["duration"]),
    ("how much does a kindergarten charge", ["price"]),
    ("报名要准备哪些材料", ["procedure"]),
    ("学生近视率是多少", ["rate"]),
    ("公办园占比要达到多少", ["rate"]),
    ("中考体育满分多少分", ["score_line"]),
    ("报名要走什么流程", ["procedure"]),
    ("这个证怎么考", ["procedure"]),
    ("招生划片范围在哪里查？", ["website"]),
    ("在哪个APP上报名", ["website"]),
    ("要办啥手续", ["procedure"]),             # 手续: its steps or its place asked
    ("去哪里办手续", ["procedure"]),
    ("怎么给孩子办转学手续", ["procedure"]),
    # a figure in any unit the typed ones do not name
    ("初中老师一周最多能排多少节课？", ["amount"]),
    ("法律规定网吧至少要离学校多少米？", ["amount"]),
    ("医药费学校要承担百分之多少？", ["amount"]),
    ("班主任津贴一个月法律规定给多少？", ["amount"]),
    ("学宪法讲宪法活动今年是第几届", ["amount"]),
])
def test_a_request_for_a_fact_is_recognised(question, expected):
    assert _names(question) == expected


@pytest.mark.parametrize("question", [
    "幼儿园收费标准是怎么规定的", "公办小学收学费吗", "幼儿园多大面积", "谁负责义务教育", "师德考核结果用在哪",
    "孩子几年级开始学英语", "保教费一个月多少钱算正常？",
    "公办中小学的校长是谁来聘的？",                     # who appoints: an authority, not a name
    "园里接收了几个残疾孩子，该怎么办？",               # 了几个: a few, not how many
    "我在村小教书好几年了一直没地方住，政府管不管？",    # 好几年: for years, not how long
    "我们园好几个老师看着像刚毕业的",                  # 好几个: several
    "最近有好几起这样的事，学校该怎么管？",
    "哪几个部门负责校园安全",                          # which ones, not how many
    "几乎每个孩子都要参加吗",
    "开培训机构不去办设立手续，会被怎么处理？",        # asks the penalty, not the steps
    "去教育局办个事手续太麻烦了",
])
def test_questions_about_a_rule_ask_for_no_fact(question):
    assert _names(question) == []


def test_each_sentence_of_a_message_asks_on_its_own():
    # a closing yes/no sentence does not excuse the request for a figure before it
    assert _names("保教费一个月最多收多少钱？我们这边收1800正常吗") == ["price"]
    assert _names("户外活动要满几个小时？是2小时吗") == ["duration"]
    assert _names("收1800正常吗？") == []


# (question, sentence quoted, whether it states the fact asked); Chinese numerals read as digits
STATED = [
    ("义务教育几年", "国家实行九年义务教育制度。", True),
    ("义务教育几年", "国家实行义务教育制度。", False),
    ("新建几所学校", "新改扩建公办中小学30所", True),
    ("新建几所学校", "新建学校三十所", True),
    ("孩子几岁上小学", "凡年满六周岁的儿童，其父母或者其他法定监护人应当送其入学", True),
    ("孩子几岁上小学", "年满3周岁的儿童可以入园", True),
    ("孩子几岁上小学", "2020年5月15日起施行", False),            # an age is never read from a date
    ("两湖幼儿园哪年建成", "到2025年，新建幼儿园30所。", True),
    ("两湖幼儿园哪年建成", "二〇二二年九月一日起施行", True),
    ("两湖幼儿园哪年建成", "每年9月开学", False),                 # a month is no year
    ("服务期满几年", "服务期不少于6年", True),
    ("服务期满几年", "三十日内作出决定", True),
    ("服务期满几年", "到2020年，完成公费定向培养计划", False),    # a year is not a length of time
    ("服务期满几年", "每年九月十日为教师节。", False),            # a date
    ("服务期满几年", "线上培训每课时不超过30分钟", True),
    ("多久要跟孩子联系一次", "与未成年人至少每周联系和交流一次", True),
    ("多久要跟孩子联系一次", "每3个月检查一次", True),
    ("多久要跟孩子联系一次", "与未成年人经常联系", False),
    ("报名要带什么材料", "所需材料：户口簿、房产证或租赁备案证明、适龄儿童出生证明。", True),  # a notice's list
    ("报名要带什么材料", "报名程序：网上填报、现场审核、公布结果。", True),
    ("报名要带什么材料", "学校应当建立学生档案管理制度。", False),
    ("中考体育满分多少分", "体育考试满分为60分", True),
    ("中考体育满分多少分", "近视率控制在46.8%", False),          # a rate is no score
    ("学生近视率是多少", "近视率控制在46.8%", True),
    ("学生近视率是多少", "比例达百分之五十", True),
    ("学生近视率是多少", "中小学生师比达到13:1", True),
    ("学生近视率是多少", "学生近视发生率（%）", False),          # a table's column head states no value
    ("一周最多多少节课？", "每周课时不超过二十节", True),         # 二十节 reads 20节
    ("一周最多多少节课？", "每月补助300元", True),
    ("一周最多多少节课？", "5月15日", False),
    ("一周最多多少节课？", "比例达到百分之三十", True),
    ("一周最多多少节课？", "第三十六个教师节", True),
    ("一周最多多少节课？", "举办第七届宪法晨读", True),
    ("一周最多多少节课？", "到2025年，全面推进课程改革", False),   # a year, a date, an article: no amount
    ("一周最多多少节课？", "每年9月10日为教师节", False),
    ("一周最多多少节课？", "依照本法第十二条的规定", False),
    ("一周最多多少节课？", "教师的平均工资水平应当不低于当地公务员的平均工资水平", False),
    ("在哪个网站查", "登录衡阳市教育局网站（http://jyj.hengyang.gov.cn）查询", True),
    ("在哪个网站查", "通过微信小程序“衡阳招生”报名", True),
    ("在哪个网站查", "县级人民政府教育行政部门应当及时公布学区划分情况", False),
]


@pytest.mark.parametrize(("question", "text", "stated"), STATED)
def test_a_sentence_states_the_fact_asked_or_not(question, text, stated):
    (fact,) = expected_facts(question)
    assert states_fact(text, fact) is stated


