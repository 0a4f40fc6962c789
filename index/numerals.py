"""Chinese numerals, read and normalised for matching.

Laws write 六周岁, 三十日, 百分之五十; parents type 6岁, 30天, 50%. Both sides of a match
(the documents' tokens and the questions') go through :func:`normalize_numerals`, so
the two meet. Quoted text is never changed: this is for matching only.

:func:`cn_int` is the one reader of a numeral (十二 → 12), shared by the parser (第十二条),
the dialog (a user typing 第十二条) and the search.
"""

from __future__ import annotations

import re

_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_NUMERAL = "零〇一二两三四五六七八九十百千"

# Units after which a numeral is a quantity (so 一般, 统一 and 十四五 are left alone).
_MEASURES = ("周岁|岁|个月|年级|学年|年|月|周|日|天|小时|分钟|时|学时|课时|个|所|名|人|次|项|条|章|节|倍|万|亿|元|"
             "米|平方米|公里|层|班|类|种|级|门|分")
_CN_QUANTITY = re.compile(rf"(?<![{CN_NUMERAL}])([{CN_NUMERAL}]{{1,6}})(?={_MEASURES})")
_PERCENT = re.compile(rf"百分之([{CN_NUMERAL}]{{1,6}}|\d+(?:\.\d+)?)")
_DAY_COUNT = re.compile(r"(?<![月\d])(\d+)日")  # 30日 is a span of days; 5月15日 is a date
_WEEK_AGE = re.compile(r"周岁")


def cn_int(numeral: str) -> int:
    """Value of an arabic or Chinese numeral: ``十二`` → 12, ``一百零一`` → 101, ``12`` → 12.

    :raises ValueError: ``numeral`` holds something that is not a numeral.
    """
    numeral = numeral.strip()
    if numeral.isdigit():
        return int(numeral)
    if not numeral or any(ch not in _DIGITS and ch not in _UNITS for ch in numeral):
        raise ValueError(f"not a numeral: {numeral!r}")
    total, digit = 0, 0
    for ch in numeral:
        if ch in _DIGITS:
            digit = digit * 10 + _DIGITS[ch] if _is_positional(numeral) else _DIGITS[ch]
        else:
            total += (digit or 1) * _UNITS[ch]
            digit = 0
    return total + digit


def normalize_numerals(text: str) -> str:
    """``六周岁`` → ``6岁``, ``百分之五十`` → ``50%``, ``三十日`` → ``30天``; other text unchanged."""
    if not text:
        return text
    text = _PERCENT.sub(lambda m: f"{_value(m.group(1))}%", text)
    text = _CN_QUANTITY.sub(lambda m: _value(m.group(1)), text)
    text = _WEEK_AGE.sub("岁", text)
    return _DAY_COUNT.sub(r"\1天", text)


def _value(numeral: str) -> str:
    try:
        return str(cn_int(numeral))
    except ValueError:
        return numeral


def _is_positional(numeral: str) -> bool:
    """``二〇二〇`` is written digit by digit; ``二十`` uses unit characters."""
    return not any(ch in _UNITS for ch in numeral)
