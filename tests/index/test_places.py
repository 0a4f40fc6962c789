"""index.places: places of China named in a text, from the shipped division codes."""

import pytest

from index.places import Place, elsewhere, places_in

HENGYANG, SHAOXING = Place("430400000000", "衡阳市"), Place("330600000000", "绍兴市")


@pytest.mark.parametrize(("text", "names"), [
    ("衡阳市教育局2020年工作要点", ["衡阳市"]),
    ("长沙的幼儿园怎么报名", ["长沙市"]),               # a city by its short name
    ("广西壮族自治区的学校", ["广西壮族自治区"]),
    ("广西的学校", ["广西壮族自治区"]),
    ("雁峰区有没有新学校", ["雁峰区"]),                 # a district by its full name only
    ("我们一直在广东打工，今年回衡阳了", ["广东省", "衡阳市"]),
    ("孩子几岁上小学", []),
    ("世界和平", []),                                   # 和平区's short name is an everyday word
    ("双江拉祜族佤族布朗族傣族自治县的学校", ["双江拉祜族佤族布朗族傣族自治县"]),  # the longest name
])
def test_places_named_in_a_text(text, names):
    assert [p.name for p in places_in(text)] == names


def test_levels_and_nesting_follow_the_division_code():
    district, province = places_in("雁峰区")[0], places_in("湖南省")[0]
    assert (province.level, HENGYANG.level, district.level) == (1, 2, 3)
    assert district.within(HENGYANG) and HENGYANG.within(province) and district.within(province)
    assert not HENGYANG.within(district) and not SHAOXING.within(province)
    assert HENGYANG.related(district) and district.related(HENGYANG)


@pytest.mark.parametrize(("question", "answer"), [
    ("长沙市小学一年级招生划片范围在哪里查？", True),     # another city
    ("杭州市的规划里普惠园覆盖率目标是多少", True),
    ("雁峰区今年有没有新建学校", False),                 # inside a covered city
    ("湖南省对幼儿园有什么要求", False),                 # contains one
    ("我们在广东打工，娃回衡阳读书有政策吗", False),      # also names a covered place
    ("孩子几岁上小学", False),                          # names no place
])
def test_a_question_is_about_elsewhere_when_no_place_it_names_is_covered(question, answer):
    assert elsewhere(question, (HENGYANG, SHAOXING)) is answer


def test_a_library_of_national_laws_only_covers_no_place():
    assert elsewhere("衡阳的学校", ())
    assert not elsewhere("学校的规定", ())
