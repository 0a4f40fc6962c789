"""The fitted ranker: weights over :data:`index.features.FEATURES`, and the abstention model.

Both are logistic regressions fitted by :mod:`index.fit` (``policybot fit``) and shipped as
a small JSON file, ``index/resources/ranker.json``. Ranking scores every candidate item with
the first; the second turns the top item's evidence into the probability that the library
answers the question, and one threshold decides whether the bot answers or declines.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import RetrievalError
from index.features import FEATURES, RANK_FEATURES

DEFAULT_MODEL = Path(__file__).with_name("resources") / "ranker.json"

# A question asking for a fact (a price, a date …) that the top item does not state, or made of words
# the library never uses, is not answered however close the topic: its confidence is capped here,
# under any sensible threshold (the same cap at fit time and at search time).
UNSTATED_FACT_CONFIDENCE = 0.1
#: The abstention threshold of a ranker fitted on nothing (the prior, or a fold with one class):
#: even odds. The dialog quotes further items at this confidence too.
NEUTRAL_THRESHOLD = 0.5

# Inputs of the abstention model, all taken from the ranked list of one question.
ABSTAIN_INPUTS: tuple[str, ...] = ("top_score", "margin", "cos_sent", "cos_item", "coverage",
                                   "bigram_coverage", "title_coverage", "numbers", "doc_named", "elsewhere",
                                   "unseen")


@dataclass(frozen=True)
class Linear:
    """A standardised linear model: ``w · (x - mean) / scale + bias``."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def to_json(self) -> dict:
        return {"names": list(self.names), "mean": _floats(self.mean), "scale": _floats(self.scale),
                "weights": _floats(self.weights), "bias": round(float(self.bias), 6)}

    @classmethod
    def from_json(cls, data: dict) -> Linear:
        return cls(tuple(data["names"]), np.array(data["mean"], dtype=np.float32),
                   np.array(data["scale"], dtype=np.float32), np.array(data["weights"], dtype=np.float32),
                   float(data["bias"]))


@dataclass(frozen=True)
class Ranker:
    """Scores candidates and says how sure the top one is."""

    rank: Linear
    abstain: Linear
    threshold: float
    info: dict

    def scores(self, features: np.ndarray) -> np.ndarray:
        return self.rank(features[:, _RANK_COLUMNS])

    def confidence(self, features: np.ndarray, scores: np.ndarray) -> float:
        """Probability that the library answers the question, from the best-scored row first
        (``features`` in rank order)."""
        if len(scores) == 0:
            return 0.0
        z = float(self.abstain(abstain_inputs(features, scores)[None, :])[0])
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_json(self) -> dict:
        return {"features": list(RANK_FEATURES), "rank": self.rank.to_json(), "abstain": self.abstain.to_json(),
                "threshold": round(float(self.threshold), 4), "info": self.info}


def rank_order(scores: np.ndarray, late: np.ndarray | None = None) -> np.ndarray:
    """Indices best first; rows marked ``late`` (another year's plan) after all the others."""
    if late is None:
        return np.argsort(-scores, kind="stable")
    return np.lexsort((-scores, late))


_RANK_COLUMNS = np.array([FEATURES.index(name) for name in RANK_FEATURES])
#: How far down a question declined for an unstated fact looks for an item that states it.
FACT_POINTER_DEPTH = 10


def fact_first(order: np.ndarray, states: Callable[[int], bool]) -> np.ndarray:
    """``order`` with the first of its next rows whose item states the fact asked (``states(n)``
    for row ``n``) moved to the front. The question stays declined — the ranker put that item
    lower on topic — but its first pointer is one that gives what was asked (孩子几岁上小学:
    the article stating 六周岁 rather than a nearer one stating no age). Measured held out:
    Recall@1 +0.008, nothing else moved."""
    for n in range(1, min(FACT_POINTER_DEPTH, len(order))):
        if states(n):
            return to_front(order, n)
    return order


def to_front(order: np.ndarray, n: int) -> np.ndarray:
    """``order`` with its row ``n`` moved to the front, the others as they were."""
    return np.r_[order[n], np.delete(order, n)]


def abstain_inputs(features: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The abstention model's inputs from the rows of one question, best first."""
    top = features[0]
    col = {name: top[FEATURES.index(name)] for name in ABSTAIN_INPUTS if name in FEATURES}
    second = float(scores[1]) if len(scores) > 1 else float(scores[0]) - 5.0
    col["top_score"] = float(scores[0])
    col["margin"] = float(scores[0]) - second
    return np.array([col[name] for name in ABSTAIN_INPUTS], dtype=np.float32)


def load_ranker(path: Path | None = None) -> Ranker:
    """The ranker in ``path`` (default: the one shipped with the package).

    :raises RetrievalError: the file is missing, malformed or fitted on other features.
    """
    return _load(str(path or DEFAULT_MODEL))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Ranker:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rank, abstain = Linear.from_json(data["rank"]), Linear.from_json(data["abstain"])
        threshold = float(data["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RetrievalError(f"{path}: not a ranker model ({exc}); run `policybot fit`") from exc
    if rank.names != RANK_FEATURES or abstain.names != ABSTAIN_INPUTS:
        raise RetrievalError(f"{path}: fitted on other features; run `policybot fit` again")
    return Ranker(rank, abstain, threshold, data.get("info", {}))


def _floats(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


def prior_ranker() -> Ranker:
    """An unfitted ranker (equal weight on the main evidence): what :mod:`index.fit` starts from,
    since the features it collects do not depend on the weights."""
    weights = np.array([1.0 if name in ("cos_sent_z", "cos_item_z", "bm25_item", "bigram") else 0.0
                        for name in RANK_FEATURES], dtype=np.float32)
    size = len(RANK_FEATURES)
    rank = Linear(RANK_FEATURES, np.zeros(size, np.float32), np.ones(size, np.float32), weights, 0.0)
    abstain = Linear(ABSTAIN_INPUTS, np.zeros(len(ABSTAIN_INPUTS), np.float32),
                     np.ones(len(ABSTAIN_INPUTS), np.float32), np.zeros(len(ABSTAIN_INPUTS), np.float32), 0.0)
    return Ranker(rank, abstain, NEUTRAL_THRESHOLD, {"prior": True})
