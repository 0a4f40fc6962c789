"""index.terms: which texts contain a term."""

from index.terms import TermIndex


def test_term_index_finds_substrings_as_in_does_and_never_across_two_texts():
    texts = ["适龄儿童入学", "儿童", "", "学前教育儿童儿童", "入学"]
    index = TermIndex(texts)
    for term in ("儿童", "入学", "童入", "学前", "童儿", "学入", "缺席"):
        assert index.containing(term).tolist() == [n for n, t in enumerate(texts) if term in t], term
    assert index.containing("儿童") is index.containing("儿童")  # remembered
    assert TermIndex([]).containing("儿童").tolist() == []


def test_term_index_forgets_the_least_recent_terms(monkeypatch):
    monkeypatch.setattr(TermIndex, "SIZE", 2)
    index = TermIndex(["甲乙丙"])
    first = index.containing("甲")
    index.containing("乙")
    index.containing("丙")
    assert index.containing("甲") is not first and index.containing("甲").tolist() == [0]


def test_term_index_reads_characters_it_has_never_seen_and_many_texts():
    texts = [f"第{n}条 学生{n % 7}" for n in range(1000)]
    index = TermIndex(texts)
    for term in ("学生3", "条", "第99", "缺", "生9"):
        assert index.containing(term).tolist() == [n for n, t in enumerate(texts) if term in t], term
