"""Tests of index.tokenize with the real jieba, opencc and pypinyin and the shipped resources."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from index.tokenize import (
    DEFAULT_STOPWORDS,
    DEFAULT_SYNONYMS,
    DEFAULT_USERDICT,
    Tokenizer,
    TokenizerInfo,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.fixture
def resources(tmp_path: Path) -> dict[str, Path]:
    """Editable copies of the shipped resources."""
    copies = {}
    for name, src in (
        ("userdict", DEFAULT_USERDICT),
        ("stopwords", DEFAULT_STOPWORDS),
        ("synonyms", DEFAULT_SYNONYMS),
    ):
        copies[name] = tmp_path / src.name
        copies[name].write_bytes(src.read_bytes())
    return copies


# --- normalize --------------------------------------------------------------------------


def test_full_width_becomes_half_width_lower_case(tok: Tokenizer) -> None:
    assert tok.normalize("ＡＢＣ１２３") == "abc123"
    assert tok.tokens("ＡＢＣ１２３") == ["abc123"]


def test_normalize_collapses_spaces_and_ideographic_space(tok: Tokenizer) -> None:
    assert tok.normalize("  大班额\u3000\n\t问题  ") == "大班额 问题"


def test_normalize_keeps_circled_numbers_and_chinese_punctuation(tok: Tokenizer) -> None:
    # NFKC is limited to the full-width block: ① and 。 are quoted verbatim by documents.
    assert tok.normalize("①加强。") == "①加强。"


def test_traditional_becomes_simplified(tok: Tokenizer) -> None:
    assert tok.normalize("幼兒園學費") == "幼儿园学费"
    assert "幼儿园" in tok.tokens("幼兒園")


# --- tokens -----------------------------------------------------------------------------


def test_user_dictionary_terms_stay_whole(tok: Tokenizer) -> None:
    tokens = tok.tokens("深入化解义务教育大班额")
    assert "大班额" in tokens
    assert "义务教育" in tokens


@pytest.mark.parametrize(
    "text, term",
    [
        ("全面落实小区配套园", "小区配套园"),
        ("推进芙蓉学校项目建设", "芙蓉学校"),
        ("持续推进校外培训机构专项治理", "校外培训机构"),
        ("完成三通两平台建设任务", "三通两平台"),
        ("完善随班就读、送教上门工作机制", "送教上门"),
        ("义务教育建档立卡学生", "建档立卡"),
    ],
)
def test_policy_terms_from_the_seed_document(tok: Tokenizer, text: str, term: str) -> None:
    assert term in tok.tokens(text)


def test_search_mode_also_emits_sub_words(tok: Tokenizer) -> None:
    # A question saying "培训机构" must meet a document saying "校外培训机构".
    tokens = tok.tokens("校外培训机构")
    assert {"校外", "培训", "机构", "校外培训机构"} <= set(tokens)


def test_stopwords_and_punctuation_dropped(tok: Tokenizer) -> None:
    tokens = tok.tokens("幼儿园的收费有没有什么标准呢？")
    assert "幼儿园" in tokens and "收费" in tokens and "标准" in tokens
    assert not {"的", "有没有", "没有", "什么", "呢", "?", "？"} & set(tokens)


def test_only_stopwords_and_punctuation_gives_empty_list(tok: Tokenizer) -> None:
    question = "请问，有没有什么呢？？！"
    assert tok.tokens(question) == []
    assert tok.query_tokens(question) == []


def test_years_and_relative_years_are_kept(tok: Tokenizer) -> None:
    tokens = tok.tokens("2020年和今年、去年")
    assert {"2020", "今年", "去年"} <= set(tokens)


def test_numbers_are_kept_usefully(tok: Tokenizer) -> None:
    tokens = tok.tokens("基本消除55人以上大班额，新增义务教育学位2.5万个以上，比例达50%")
    assert {"55", "2.5", "2.5万", "50%"} <= set(tokens)


def test_empty_input(tok: Tokenizer) -> None:
    assert tok.normalize("") == ""
    assert tok.tokens("") == []
    assert tok.query_tokens("") == []
    assert tok.expand_query("") == ""


def test_very_long_input_does_not_crash(tok: Tokenizer) -> None:
    chinese = "班里人太多谁管，da ban e 补习班 kindergarten。" * 3000
    assert len(chinese) > 100_000
    assert "大班额" in tok.query_tokens(chinese)
    assert tok.expand_query(chinese).startswith("班里人太多谁管")
    latin = "x" * 100_000
    assert tok.tokens(latin) == [latin]
    assert tok.query_tokens(latin) == [latin]


# --- query expansion --------------------------------------------------------------------


def test_colloquial_class_size_maps_to_big_class(tok: Tokenizer) -> None:
    assert "大班额" in tok.query_tokens("班里人太多谁管")
    assert tok.expand_query("班里人太多谁管") == "班里人太多谁管 大班额"


def test_tutoring_class_maps_to_off_campus_institutions(tok: Tokenizer) -> None:
    tokens = tok.query_tokens("补习班")
    assert "补习班" in tokens  # originals are kept
    assert "校外培训机构" in tokens
    assert "培训" in tokens  # targets are segmented like documents


def test_english_question_gets_chinese_terms(tok: Tokenizer) -> None:
    assert "幼儿园" in tok.query_tokens("kindergarten goals")
    assert "幼儿园" in tok.query_tokens("KINDERGARTENS")  # case and plural
    assert "校外培训机构" in tok.query_tokens("What about off-campus tutoring centers?")


def test_english_keys_need_word_boundaries(tok: Tokenizer) -> None:
    # "art" must not fire inside "start"; "teacher" fires next to hanzi (no \\b there).
    assert "艺术" not in tok.query_tokens("when does school start")
    assert "教师" in tok.query_tokens("我想问下teacher salary会不会按时发")


def test_longest_key_wins_overlap(tok: Tokenizer) -> None:
    # 带孩子 (parenting) outranks 孩子 (→ 学生 幼儿); 小学化 is not "primary school".
    assert "学生" not in tok.query_tokens("带孩子")
    assert "义务教育" not in tok.query_tokens("幼儿园小学化")


def test_expansions_are_not_duplicated(tok: Tokenizer) -> None:
    tokens = tok.query_tokens("幼儿园")
    assert tokens.count("幼儿园") == 1
    assert "学前教育" in tokens


def test_tokens_is_not_expanded(tok: Tokenizer) -> None:
    assert "大班额" not in tok.tokens("班里人太多谁管")


def test_pinyin_run_maps_to_term(tok: Tokenizer) -> None:
    assert "大班额" in tok.query_tokens("da ban e")
    assert "大班额" in tok.query_tokens("班级人数太多 da ban e 能解决吗")
    assert "大班额" in tok.query_tokens("DaBanE")
    assert "大班额" in tok.expand_query("da ban e 怎么办")


def test_homophone_typo_maps_to_term(tok: Tokenizer) -> None:
    assert "资助" in tok.query_tokens("贫困学生资住政策有哪些")


def test_ordinary_english_is_not_read_as_pinyin(tok: Tokenizer) -> None:
    assert tok.query_tokens("tell me about it") == []


def test_expand_query_without_expansions_is_normalized_question(tok: Tokenizer) -> None:
    assert tok.expand_query("吃空饷的问题会清理吗？") == "吃空饷的问题会清理吗?"


# --- resources and info -----------------------------------------------------------------


def test_info_is_stable_for_same_resources(tok: Tokenizer, resources: dict[str, Path]) -> None:
    other = Tokenizer(**resources)
    assert other.info == tok.info
    assert isinstance(tok.info, TokenizerInfo) and tok.info.version


@pytest.mark.parametrize("changed", ["userdict", "stopwords", "synonyms"])
def test_info_hash_changes_with_resource(tok: Tokenizer, resources: dict[str, Path], changed: str) -> None:
    path = resources[changed]
    extra = {"userdict": "新词条 1000 nz\n", "stopwords": "学校\n", "synonyms": "读书郎\t学生\n"}[changed]
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    info = Tokenizer(**resources).info
    assert getattr(info, f"{changed}_sha") != getattr(tok.info, f"{changed}_sha")
    unchanged = {"userdict", "stopwords", "synonyms"} - {changed}
    assert all(getattr(info, f"{name}_sha") == getattr(tok.info, f"{name}_sha") for name in unchanged)


def test_custom_resources_take_effect(tmp_path: Path) -> None:
    userdict = tmp_path / "u.txt"
    userdict.write_text("超级大课堂 2000 nz\n", encoding="utf-8")
    stopwords = tmp_path / "s.txt"
    stopwords.write_text("# comment\n的\n", encoding="utf-8")
    synonyms = tmp_path / "y.tsv"
    synonyms.write_text("# comment\n网课\t超级大课堂\n", encoding="utf-8")
    tok = Tokenizer(userdict=userdict, stopwords=stopwords, synonyms=synonyms)
    assert "超级大课堂" in tok.tokens("办好超级大课堂")
    assert "超级大课堂" in tok.query_tokens("网课的安排")
    assert "超级大课堂" in tok.query_tokens("chao ji da ke tang")


def test_malformed_synonyms_line_is_reported(tmp_path: Path) -> None:
    synonyms = tmp_path / "y.tsv"
    synonyms.write_text("网课 没有制表符\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        Tokenizer(synonyms=synonyms)


def test_private_jieba_leaves_global_dictionary_alone(tok: Tokenizer) -> None:
    import jieba

    assert "芙蓉学校" in tok.tokens("芙蓉学校")
    assert "芙蓉学校" not in jieba.dt.FREQ


# --- threads, stderr -----------------------------------------------------------------


def test_thread_safe_reads(tok: Tokenizer) -> None:
    questions = ["班里人太多谁管", "kindergarten goals", "贫困学生资住政策", "da ban e", "幼兒園學費"] * 40
    expected = [tok.query_tokens(q) for q in questions]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(tok.query_tokens, questions)) == expected


def test_init_is_silent_on_stderr() -> None:
    code = "from index.tokenize import Tokenizer; print(Tokenizer().tokens('芙蓉学校'))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "芙蓉学校" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("text", ["孩子几岁上小学？", "幼儿园收费标准", "da ban e 怎么解决", "", "！！"])
def test_question_terms_are_normalize_tokens_and_expansion_in_one_pass(tok: Tokenizer, text: str) -> None:
    norm, tokens, expansion = tok.question_terms(text)
    assert (norm, tokens) == (tok.normalize(text), tok.tokens(text))
    assert tokens + expansion == tok.query_tokens(text)  # the expansion, as the full query appends it
