"""index.tables: a table that plain text gives one cell per line is read row by row, each value
beside its column's header; anything else is left as it was."""

from index.facts import expected_facts, states_fact
from index.structure import parse_file
from index.tables import rebuild_cell_tables
from tests.conftest import FIXTURES

INDICATORS = """（四）核心指标
一级
二级
十三五期间
2025目标
更公平的教育
普惠性幼儿园在园儿童覆盖面（%）
93.94
95
校际优质均衡差异系数
小学段
0.40
0.36
初中段
0.35
0.30
城乡教育共同体数量（个）
102
120
三、落实立德树人根本任务"""


def test_rows_keep_their_headers_and_categories():
    lines = rebuild_cell_tables(INDICATORS).split("\n")
    assert lines == [
        "（四）核心指标",
        "一级: 更公平的教育 | 二级: 普惠性幼儿园在园儿童覆盖面（%） | 十三五期间: 93.94 | 2025目标: 95",
        "一级: 校际优质均衡差异系数 | 二级: 小学段 | 十三五期间: 0.40 | 2025目标: 0.36",
        "二级: 初中段 | 十三五期间: 0.35 | 2025目标: 0.30",
        "二级: 城乡教育共同体数量（个） | 十三五期间: 102 | 2025目标: 120",
        "三、落实立德树人根本任务",
    ]


def test_the_table_ends_at_the_first_row_that_does_not_fit():
    text = INDICATORS.replace("三、", "更高效的治理\n财政教育支出（万元）\n132\n逐年只增不减\n三、")
    lines = rebuild_cell_tables(text).split("\n")
    assert lines[4] == "二级: 城乡教育共同体数量（个） | 十三五期间: 102 | 2025目标: 120"
    assert lines[5:10] == ["更高效的治理", "财政教育支出（万元）", "132", "逐年只增不减", "三、落实立德树人根本任务"]


def test_what_is_not_such_a_table_is_left_alone():
    numbered = ("项目一览\n序号\n区域\n项目名称\n计划投资\n"
                "1\n越城区\n曲屯小学\n24600\n2\n柯灵小学\n23000\n3\n迪荡中学\n29000")
    signature = "衡阳市教育局\n2021年8月20日"
    prose = "一、目标\n1.新增学位5000个。\n2.新建学校3所。\n3.培训教师100人。\n4.其他。"
    piped = "| 项目 | 目标 |\n|---|---|\n| 学位 | 5000 |\n| 学校 | 3 |\n| 教师 | 100 |\n| 园 | 2 |\n| 班 | 9 |"
    for text in (numbered, signature, prose, piped):
        assert rebuild_cell_tables(text) == text


def test_the_plans_indicator_table_is_one_sentence_per_row():
    doc = parse_file(FIXTURES / "shaoxing-14th-five-year-plan-2021.txt")
    table = next(i for s in doc.sections for i in s.items if i.title == "核心指标")
    rows = [s.text for s in table.sentences]
    assert "二级: 普惠性幼儿园在园儿童覆盖面（%） | 十三五期间: 93.94 | 2025目标: 95" in rows
    assert rows[0] == "核心指标" and sum(" | " in row for row in rows) >= 30 and len(rows) < 100  # 154 cells before


def test_a_row_states_the_fact_its_label_gives_the_unit_of():
    (rate,) = expected_facts("入园率目标是多少")
    assert states_fact("二级: 学前教育三年入园率（%） | 十三五期间: 99.76 | 2025目标: 99.8", rate)
    (count,) = expected_facts("共同体要建多少个")
    assert states_fact("二级: 城乡教育共同体数量（个） | 十三五期间: 102 | 2025目标: 120", count)
    (price,) = expected_facts("研发经费要投入多少钱")
    assert states_fact("二级: 年度研发经费支出（亿元） | 十三五期间: 1.8 | 2025目标: 2.3", price)
    assert not states_fact("学前教育三年入园率（%）", rate)  # a label alone states nothing
