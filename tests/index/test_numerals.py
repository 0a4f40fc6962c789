"""index.numerals: one reader of Chinese numerals, and the normaliser both sides of a match use."""

import pytest

from index.numerals import cn_int, normalize_numerals


@pytest.mark.parametrize(("numeral", "value"), [
    ("十二", 12), ("十", 10), ("一百零一", 101), ("二十三", 23), ("两", 2), ("二〇二〇", 2020), ("12", 12),
    ("一千二百", 1200),
])
def test_cn_int_reads_numerals(numeral, value):
    assert cn_int(numeral) == value


@pytest.mark.parametrize("bad", ["", "十二条", "abc", "三点五"])
def test_cn_int_refuses_what_is_not_a_numeral(bad):
    with pytest.raises(ValueError, match="not a numeral"):
        cn_int(bad)


@pytest.mark.parametrize(("text", "expected"), [
    ("年满六周岁的儿童", "年满6岁的儿童"),
    ("十六周岁以上", "16岁以上"),
    ("三十日内", "30天内"),
    ("百分之五十", "50%"),
    ("百分之7.5", "7.5%"),
    ("新增学位五千个", "新增学位5000个"),
    ("两个月", "2个月"),
    ("第十一条", "第11条"),
])
def test_quantities_become_digits(text, expected):
    assert normalize_numerals(text) == expected


@pytest.mark.parametrize("text", ["一般", "十四五规划", "统一", "5月15日", "一中", ""])
def test_words_and_dates_are_left_alone(text):
    assert normalize_numerals(text) == text


def test_both_spellings_of_an_age_meet():
    assert normalize_numerals("六周岁") == normalize_numerals("6岁") == "6岁"
    assert normalize_numerals("三十日") == normalize_numerals("30天")
