"""index.fit and index.evaluate: fitting is deterministic, cross-validation holds documents out,
the threshold trades declines for wrong declines, and both gold formats are scored alike."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from index.errors import CorpusError
from index.evaluate import EvalQuestion, Gold, Outcome, RankedItem, evaluate, matches, read_questions
from index.features import FEATURES, RANK_FEATURES
from index.fit import C, Sample, _signed_logistic, choose_threshold, cross_validate, fit
from index.rank import Ranker, load_ranker


def _sample(n: int, doc: str, answerable: bool, rng: np.random.Generator) -> Sample:
    """Ten candidates; the gold one (row 0) has a higher dense z-score and coverage, as in real data."""
    feats = rng.normal(0, 1, size=(10, len(FEATURES))).astype(np.float32)
    if answerable:
        feats[0, FEATURES.index("cos_item_z")] += 2.5
        feats[0, FEATURES.index("coverage")] += 1.5
    labels = np.zeros(10, dtype=np.int64)
    labels[0] = int(answerable)
    gold = (Gold(doc, 0),) if answerable else ()
    items = tuple(RankedItem(doc, i, str(i)) for i in range(10))
    q = EvalQuestion(f"{doc}-{n}", f"question {n}", gold, source=doc)
    return Sample(q, doc if answerable else "unanswerable", feats, labels, items,
                  np.ones(10, dtype=bool), np.zeros(10, dtype=bool))


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    rng = np.random.default_rng(7)
    return [_sample(n, doc, n % 6 != 5, rng) for doc in ("a", "b", "c") for n in range(30)]


def test_fit_is_deterministic_and_learns_the_signal(samples):
    first, second = fit(samples), fit(samples)
    assert first.to_json() == second.to_json()
    weights = dict(zip(first.rank.names, first.rank.weights.tolist(), strict=True))
    assert weights["cos_item_z"] > 0.5 and weights["coverage"] > 0.2


def test_evidence_weights_keep_their_sign(samples):
    # bm25_item made to look like a sign of a wrong answer: unconstrained it would weigh
    # against the item; as evidence it is held at zero, and a penalty column never turns positive
    tilted = []
    for s in samples:
        feats = s.features.copy()
        feats[:, FEATURES.index("bm25_item")] = -3.0 * s.labels + feats[:, FEATURES.index("bm25_item")] * 0.1
        feats[:, FEATURES.index("elsewhere")] = 3.0 * s.labels
        tilted.append(replace(s, features=feats))
    weights = dict(zip(RANK_FEATURES, fit(tilted).rank.weights.tolist(), strict=True))
    assert weights["bm25_item"] == 0.0 and weights["elsewhere"] == 0.0
    assert weights["cos_item_z"] > 0.5


@pytest.mark.parametrize("intercept", [True, False])
def test_the_signed_fit_is_scikit_learns_where_no_sign_binds(intercept):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 1, size=(400, 4))
    y = (x @ [1.0, 0.5, 0.8, -0.3] + rng.normal(0, 1, 400) > 0.4).astype(int)
    ours, bias = _signed_logistic(x, y, [1, 1, 1, 0], intercept=intercept)
    theirs = LogisticRegression(C=C, fit_intercept=intercept, max_iter=5000).fit(x, y)
    np.testing.assert_allclose(ours, theirs.coef_[0], atol=1e-3)
    assert bias == pytest.approx(float(theirs.intercept_[0]) if intercept else 0.0, abs=1e-3)


def test_the_confidence_never_rises_with_words_no_document_has(samples):
    tilted = []
    for s in samples:  # unseen words made to look like a sign of an answerable question
        feats = s.features.copy()
        feats[:, FEATURES.index("unseen")] = float(s.question.answerable)
        tilted.append(replace(s, features=feats))
    weights = dict(zip(fit(tilted).abstain.names, fit(tilted).abstain.weights.tolist(), strict=True))
    assert weights["unseen"] == 0.0


def test_cross_validation_reports_in_sample_and_held_out_documents(samples):
    ranker = fit(samples)
    report = cross_validate(samples, ranker)
    assert {"in-sample", "leave-one-doc-out", "  a", "  b", "  c", "  unanswerable"} <= set(report)
    assert report["in-sample"]["recall@1"] > 0.8
    assert report["leave-one-doc-out"]["recall@1"] > 0.7
    assert report["  a"]["answerable"] == 25


def test_the_model_round_trips_through_its_file(samples, tmp_path):
    ranker = fit(samples)
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(ranker.to_json()), encoding="utf-8")
    loaded = load_ranker(path)
    feats = samples[0].features
    assert np.allclose(loaded.scores(feats), ranker.scores(feats), atol=1e-4)


def test_a_model_of_other_features_is_refused(tmp_path):
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps({"rank": {"names": ["x"], "mean": [0], "scale": [1], "weights": [1], "bias": 0},
                                "abstain": {"names": ["y"], "mean": [0], "scale": [1], "weights": [1], "bias": 0},
                                "threshold": 0.5}), encoding="utf-8")
    with pytest.raises(Exception, match="other features"):
        load_ranker(path)


def test_the_shipped_model_loads():
    assert isinstance(load_ranker(), Ranker)
    assert 0.0 < load_ranker().threshold < 1.0


def test_threshold_declines_unanswerable_before_answerable():
    probs = np.array([0.05, 0.1, 0.2, 0.6, 0.7, 0.8, 0.9])
    answerable = np.array([False, False, False, True, True, True, True])
    assert 0.2 < choose_threshold(probs, answerable) <= 0.6


def test_gold_matches_by_number_locator_or_span():
    item = RankedItem("law", 11, "11", text="凡年满六周岁的儿童，应当入学。")
    assert matches(item, Gold("law", 11))
    assert matches(item, Gold("law", "11"))
    assert matches(item, Gold("law", None, "年满六周岁"))
    assert not matches(item, Gold("plan", 11))
    assert not matches(item, Gold("law", None, "七周岁"))
    # copied from a hard-wrapped or Markdown original: its line breaks, spaces and bold marks do not count
    assert matches(item, Gold("law", None, "凡年满**六周岁**的\n儿童，\u3000应当入学"))


def test_both_question_formats_are_read(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "question": "q1", "gold_items": [3], "answer_span": "x"}\n'
        '{"id": "b", "question": "q2", "gold": [{"doc": "law", "item": 11, "span": "y"}]}\n'
        '{"id": "c", "question": "q3", "gold": []}\n', encoding="utf-8")
    a, b, c = read_questions(path, default_doc="plan")
    assert (a.gold, a.scope) == ((Gold("plan", 3, "x"),), "plan")
    assert (b.gold, b.scope) == ((Gold("law", 11, "y"),), None)
    assert not c.answerable


def test_a_gold_document_is_named_by_its_file_stem_as_the_index_names_it(tmp_path):
    # the index gives Hengyang Preschool（2019）.txt the id hengyang-preschool-2019 (index.structure.slug)
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "q", "gold": [{"doc": "Hengyang Preschool（2019）", "item": 3}]}\n'
                    '{"question": "q", "gold_items": [5]}\n', encoding="utf-8")
    named, scoped = read_questions(path, default_doc="Seed Plan")
    assert named.gold == (Gold("hengyang-preschool-2019", 3),)
    assert (scoped.gold, scoped.scope) == ((Gold("seed-plan", 5),), "seed-plan")


@pytest.mark.parametrize(("written", "item"), [
    (11, 11), ("11", 11), ("12.", 12), ("第十一条", 11), ("第 3 项", 3), ("十一条", 11),
    ("三/（二）/1", "三/（二）/1"), ("三", "三"), ("附件2", "附件2"),  # locators stay locators
])
def test_an_item_is_read_as_its_number_however_it_is_written(tmp_path, written, item):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "q", "gold": [{"doc": "law", "item": written}]}), encoding="utf-8")
    assert read_questions(path)[0].gold == (Gold("law", item),)


def test_a_bad_row_names_its_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok", "gold_items": []}\nnot json\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=":2:"):
        read_questions(path)


def test_figures_per_document_and_span_in_the_shown_text():
    questions = [EvalQuestion("1", "q1", (Gold("law", 11, "六周岁"),)),
                 EvalQuestion("2", "q2", (Gold("plan", 3),)), EvalQuestion("3", "q3", ())]
    answers = {
        "q1": Outcome((RankedItem("law", 11, "11", "…六周岁…", shown="年满六周岁"),), False),
        "q2": Outcome((RankedItem("law", 3, "3"), RankedItem("plan", 3, "3")), False),
        "q3": Outcome((RankedItem("plan", 1, "1"),), True),
    }
    report = evaluate(questions, lambda q: answers[q.question])
    figures = report.figures()
    assert (figures["doc@1"], figures["recall@1"], figures["recall@3"]) == (0.5, 0.5, 1.0)
    assert figures["mrr"] == 0.75 and figures["span@3"] == 0.5 and figures["abstain_ok"] == 1.0
    assert report.by_doc["law"]["recall@1"] == 1.0 and report.by_doc["plan"]["recall@1"] == 0.0
