"""Places of China a text names (provinces, cities, counties, districts), from the official
division codes in ``resources/places.tsv``, and whether two places lie one within the other.

A city's plan answers questions about that city and its districts (雁峰区 lies in 衡阳市), not
about another city: "长沙市小学怎么划片" is not answered by 衡阳's plan however close the topic.
Questions name a province or city by its short name too (湖南, 长沙); counties and districts only
by their full name, since short ones are everyday words (和平区 → 和平).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

PLACES_FILE = Path(__file__).with_name("resources") / "places.tsv"
# suffixes that a short name drops, longest first (广西壮族自治区 → 广西, 长沙市 → 长沙)
_SUFFIX = re.compile(r"(?:壮族自治区|回族自治区|维吾尔自治区|特别行政区|自治区|省|市|地区|盟)$")


@dataclass(frozen=True)
class Place:
    """One administrative division: its 12-digit code and name."""

    code: str
    name: str

    @property
    def level(self) -> int:
        """1 province, 2 prefecture-level city, 3 county or district."""
        if self.code[2:] == "0" * 10:
            return 1
        return 2 if self.code[4:] == "0" * 8 else 3

    def within(self, other: Place) -> bool:
        """True when this place is ``other`` or lies inside it."""
        prefix = {1: 2, 2: 4, 3: 12}[other.level]
        return self.code[:prefix] == other.code[:prefix]

    def related(self, other: Place) -> bool:
        return self.within(other) or other.within(self)

    @property
    def short(self) -> str:
        """The name a question may use: 长沙 for 长沙市, 广西 for 广西壮族自治区; a county's full name."""
        short = _SUFFIX.sub("", self.name)
        return short if self.level < 3 and len(short) >= 2 else self.name


@functools.lru_cache(maxsize=1)
def _names() -> dict[str, tuple[Place, ...]]:
    """Every full name, and the short name of each province and city, to the places it names."""
    names: dict[str, list[Place]] = {}
    for line in PLACES_FILE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("# "):
            continue
        code, name = line.split("\t")
        place = Place(code, name)
        names.setdefault(name, []).append(place)
        if place.short != name:
            names.setdefault(place.short, []).append(place)
    return {name: tuple(places) for name, places in names.items()}


@functools.lru_cache(maxsize=1)
def _longest_from() -> dict[str, int]:
    """The longest name opening with each character (双江拉祜族佤族布朗族傣族自治县: 15): most
    characters of a question open none, and need no lookup at all."""
    longest: dict[str, int] = {}
    for name in _names():
        longest[name[0]] = max(longest.get(name[0], 0), len(name))
    return longest


def places_in(text: str) -> tuple[Place, ...]:
    """The places ``text`` names, longest name first at each position (衡阳市 before 衡阳)."""
    names, longest, found, i = _names(), _longest_from(), [], 0
    while i < len(text):
        for size in range(min(longest.get(text[i], 0), len(text) - i), 1, -1):
            if (places := names.get(text[i:i + size])) is not None:
                found.extend(places)
                i += size
                break
        else:
            i += 1
    return tuple(dict.fromkeys(found))


def elsewhere(question: str, covered: tuple[Place, ...]) -> bool:
    """True when ``question`` names places and none of them is, contains or lies in a ``covered`` one
    (the places of the library's local documents): it asks about somewhere no document is about."""
    named = places_in(question)
    return bool(named) and not any(p.related(c) for p in named for c in covered)
