"""Fit the ranker and the abstention model to labelled questions (``policybot fit``).

For every labelled question the searcher's candidate items and their features are
collected; an item is a positive when it matches the gold. Two logistic regressions are
fitted (scikit-learn, deterministic):

- the *ranker*, on every candidate row (positives against the other candidates);
- the *abstention model*, on the top row of each question as the fitted ranker orders
  them, labelled by whether the library answers the question at all (an answerable question
  whose top item is wrong still deserves an answer and the pointers, not a refusal: labelling
  it as a refusal taught the model to decline good questions, 0.073 of them held out against
  0.026); its threshold is chosen on the
  cross-validated probabilities.

The honest figure is **leave one document out**: the questions about one document are
scored by models fitted without them (unanswerable questions form a group of their own
per file). It is printed beside the in-sample figure; a wide gap means over-fitting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from index.evaluate import EvalQuestion, Outcome, RankedItem, aggregate, matches, score_outcome
from index.facts import expected_facts
from index.features import FEATURES, RANK_FEATURES, other_year
from index.rank import (
    ABSTAIN_INPUTS,
    NEUTRAL_THRESHOLD,
    UNSTATED_FACT_CONFIDENCE,
    Linear,
    Ranker,
    abstain_inputs,
    fact_first,
    rank_order,
)

# L2 strength of both regressions; modest, as a few hundred questions fit two dozen weights.
C = 1.0
# Wrong candidates per question that the ranker learns to put below the answer.
HARD_NEGATIVES = 40
_DENSE, _LEXICAL = FEATURES.index("dense_rr"), FEATURES.index("lex_rr")
_RANK_COLUMNS = np.array([FEATURES.index(name) for name in RANK_FEATURES])
# A wrongly declined answerable question costs this many correctly declined unanswerable ones.
FALSE_DECLINE_COST = 3.0
# The sign each weight may take (1: ≥ 0, the default; -1: ≤ 0; 0: free). Evidence for an item
# only ever raises its score and the library's confidence; a sign that the question is about
# another document or place, or uses words no document has, only lowers them. Unconstrained,
# correlated columns (an item's cosine and its best sentence's; the top score and its margin)
# took opposite signs that fitted the training questions and ranked new ones by a difference.
RANK_SIGNS = {"other_doc_named": -1, "elsewhere": -1, "log_length": 0, "unseen": 0}
ABSTAIN_SIGNS = {"elsewhere": -1, "unseen": -1}


@dataclass(frozen=True)
class Sample:
    """One labelled question with its candidates, as the searcher saw them."""

    question: EvalQuestion
    group: str
    features: np.ndarray  # candidates × FEATURES
    labels: np.ndarray    # 1 where the candidate answers
    items: tuple[RankedItem, ...]
    fact_ok: np.ndarray   # per candidate: False when the searcher declines it by rule (see Searcher.search)
    late: np.ndarray      # per candidate: another year's plan, ranked last by rule


def collect(searcher, questions: Sequence[EvalQuestion], *, progress: Callable[[int, int], None] | None = None
            ) -> list[Sample]:
    """Candidates and features of every question (the slow part: one embedding per question)."""
    samples = []
    for n, q in enumerate(questions, start=1):
        ranked = searcher.rank(q.question, scope=q.scope)
        if ranked is not None:
            items = tuple(searcher.ranked_item(int(i), ranked) for i in ranked.items)
            labels = np.array([any(matches(it, g) for g in q.gold) for it in items], dtype=np.int64)
            known = searcher.knows_words(ranked.query)
            facts = expected_facts(q.question)
            fact_ok = np.array([known and searcher.states_facts(facts, int(i), ranked) for i in ranked.items])
            late = other_year(searcher.library, ranked.query, ranked.items)
            samples.append(Sample(q, q.doc or f"unanswerable:{q.source}", ranked.features, labels, items,
                                  fact_ok, late))
        if progress:
            progress(n, len(questions))
    return samples


def fold_rankers(samples: Sequence[Sample]) -> dict[str, Ranker]:
    """For each group (document), the models fitted without its questions. The slow part of a
    fit: compute once and hand to both :func:`fit` and :func:`cross_validate`."""
    return {group: _fold_ranker([s for s in samples if s.group != group])
            for group in sorted({s.group for s in samples})}


def fit(samples: Sequence[Sample], folds: dict[str, Ranker] | None = None) -> Ranker:
    """Both models fitted on ``samples``; the threshold from leave-one-document-out probabilities."""
    rank = _fit_rank(samples)
    abstain = _fit_abstain(samples, rank)
    probs, labels = _oof_confidences(samples, folds or fold_rankers(samples))
    threshold = choose_threshold(probs, labels)
    return Ranker(rank, abstain, threshold, info={})


def cross_validate(samples: Sequence[Sample], ranker: Ranker, folds: dict[str, Ranker] | None = None
                   ) -> dict[str, dict[str, float]]:
    """Figures in sample (``ranker``) and leave-one-document-out, overall and per group."""
    folds = folds or fold_rankers(samples)
    in_sample = [_score(s, ranker) for s in samples]
    held_out: list[dict[str, float]] = [{}] * len(samples)
    for group, fold in folds.items():
        fold = replace(fold, threshold=ranker.threshold)
        for n, s in enumerate(samples):
            if s.group == group:
                held_out[n] = _score(s, fold)
    report = {"in-sample": aggregate(in_sample), "leave-one-doc-out": aggregate(held_out)}
    for group in sorted({s.group for s in samples}):
        idx = [n for n, s in enumerate(samples) if s.group == group]
        report[f"  {group}"] = aggregate([held_out[n] for n in idx])
    return report


def choose_threshold(probs: np.ndarray, answerable: np.ndarray) -> float:
    """The threshold that declines most unanswerable questions for the fewest answerable ones."""
    if len(probs) == 0 or answerable.all() or not answerable.any():
        return NEUTRAL_THRESHOLD
    best, best_cost = NEUTRAL_THRESHOLD, float("inf")
    for t in np.unique(np.round(probs, 3)):
        declined = probs < t
        cost = FALSE_DECLINE_COST * declined[answerable].mean() - declined[~answerable].mean()
        if cost < best_cost - 1e-9:
            best, best_cost = float(t), cost
    return round(best, 3)


# -- internals --------------------------------------------------------------------------------


def _fold_ranker(train: Sequence[Sample]) -> Ranker:
    rank = _fit_rank(train)
    return Ranker(rank, _fit_abstain(train, rank), NEUTRAL_THRESHOLD, info={})


def _oof_confidences(samples: Sequence[Sample], folds: dict[str, Ranker]) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-document-out confidence of each question's top item, and whether it is answerable."""
    probs = np.array([_confidence(s, folds[s.group]) for s in samples])
    return probs, np.array([s.question.answerable for s in samples], dtype=bool)


def _confidence(s: Sample, ranker: Ranker) -> float:
    scores = ranker.scores(s.features)
    order = rank_order(scores, s.late)
    p = ranker.confidence(s.features[order], scores[order])
    return p if s.fact_ok[order[0]] else min(p, UNSTATED_FACT_CONFIDENCE)


def _score(s: Sample, ranker: Ranker) -> dict[str, float]:
    scores = ranker.scores(s.features)
    order = rank_order(scores, s.late)
    if not s.fact_ok[order[0]]:  # declined by rule: the pointers lead with an item stating the fact
        order = fact_first(order, lambda n: bool(s.fact_ok[order[n]]))
    abstained = _confidence(s, ranker) < ranker.threshold
    return score_outcome(s.question, Outcome(tuple(s.items[i] for i in order[:10]), abstained))



def _fit_rank(samples: Sequence[Sample]) -> Linear:
    """Pairwise: the gold item against each of the question's other strong candidates.

    A logistic regression on feature differences (RankNet's loss with a linear scorer) learns
    what tells the answer from its near misses; what all of one question's candidates share
    cancels out, so the weights do not depend on how easy a question is.
    """
    mean, scale = _standard(np.vstack([s.features[:, _RANK_COLUMNS] for s in samples]))
    diffs = []
    for s in samples:
        pos = np.flatnonzero(s.labels == 1)
        if len(pos) == 0:
            continue
        neg = _hard_negatives(s)
        z = (s.features[:, _RANK_COLUMNS] - mean) / scale
        diffs += [z[p] - z[n] for p in pos for n in neg]
    if not diffs:
        return Linear(RANK_FEATURES, mean, scale, np.zeros(len(RANK_FEATURES), dtype=np.float32), 0.0)
    x = np.vstack(diffs)
    # both orders of every pair: the problem is symmetric, so no intercept is needed
    weights, _ = _signed_logistic(np.vstack([x, -x]), np.r_[np.ones(len(x)), np.zeros(len(x))],
                                  [RANK_SIGNS.get(name, 1) for name in RANK_FEATURES], intercept=False)
    return Linear(RANK_FEATURES, mean, scale, weights, 0.0)


def _hard_negatives(s: Sample) -> np.ndarray:
    """The wrong candidates that one retriever alone would put near the top."""
    neg = np.flatnonzero(s.labels == 0)
    prior = np.maximum(s.features[neg, _DENSE], s.features[neg, _LEXICAL])
    return neg[np.argsort(-prior, kind="stable")[:HARD_NEGATIVES]]


def _fit_abstain(samples: Sequence[Sample], rank: Linear) -> Linear:
    rows, labels = [], []
    for s in samples:
        scores = rank(s.features[:, _RANK_COLUMNS])
        order = rank_order(scores, s.late)
        rows.append(abstain_inputs(s.features[order], scores[order]))
        labels.append(int(s.question.answerable))
    x, y = np.vstack(rows), np.array(labels)
    mean, scale = _standard(x)
    if len(set(y.tolist())) < 2:  # nothing to learn: a constant model
        return Linear(ABSTAIN_INPUTS, mean, scale, np.zeros(x.shape[1], dtype=np.float32), 0.0)
    weights, bias = _signed_logistic((x - mean) / scale, y, [ABSTAIN_SIGNS.get(n, 1) for n in ABSTAIN_INPUTS])
    return Linear(ABSTAIN_INPUTS, mean, scale, weights, bias)


def _signed_logistic(z: np.ndarray, y: np.ndarray, signs: Sequence[int], *, intercept: bool = True
                     ) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression with each weight kept to its sign (1: ≥ 0, -1: ≤ 0, 0:
    free): scikit-learn's LogisticRegression(C) objective (the intercept not penalised), which
    has no bounds, minimised by bounded L-BFGS."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    sign = 2 * np.asarray(y, dtype=np.float64) - 1

    def loss(wb: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = wb[:-1], wb[-1]
        margin = sign * (z @ w + b)
        slope = -sign * expit(-margin)
        grad_b = float(slope.sum()) if intercept else 0.0
        return float(-log_expit(margin).sum() + w @ w / (2 * C)), np.r_[z.T @ slope + w / C, grad_b]

    bounds = [(0, None) if s > 0 else (None, 0) if s < 0 else (None, None) for s in signs]
    result = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B",
                      bounds=[*bounds, (None, None) if intercept else (0, 0)],
                      options={"maxiter": 5000, "gtol": 1e-8})
    return result.x[:-1].astype(np.float32), float(result.x[-1])


def _standard(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)
