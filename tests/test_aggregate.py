"""Aggregation of clip scores: mean, max, EMA, sliding window, and top-k."""

from __future__ import annotations

import numpy as np
import pytest

from edgevc.sampling import Aggregator, activate, aggregate, topk
from edgevc.spec import AggSpec

LOGITS = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))


def probs():
    return activate(LOGITS, "softmax")


def test_softmax_is_stable_and_normalised():
    p = activate(np.array([1000.0, 1001.0, 999.0]), "softmax")
    assert np.isclose(p.sum(), 1) and p.argmax() == 1
    assert np.allclose(probs(), [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])


@pytest.mark.parametrize(
    "spec, expect",
    [
        (AggSpec(method="mean"), [1.0 / 3, 1.2 / 3, 0.8 / 3]),
        (AggSpec(method="max"), [0.7, 0.8, 0.6]),
        (AggSpec(method="ema", alpha=0.5), [0.5 * 0.2 + 0.25 * 0.1 + 0.25 * 0.7, 0.5 * 0.2 + 0.25 * 0.8 + 0.25 * 0.2,
                                            0.5 * 0.6 + 0.25 * 0.1 + 0.25 * 0.1]),
        (AggSpec(method="window", window=2), [0.15, 0.5, 0.35]),
    ],
)
def test_each_method_by_hand(spec, expect):
    assert np.allclose(aggregate(LOGITS, spec), expect)


def test_stream_and_offline_aggregation_agree():
    agg = Aggregator(AggSpec(method="ema", alpha=0.3))
    for row in LOGITS:
        last = agg.update(row)
    assert np.array_equal(last, aggregate(LOGITS, AggSpec(method="ema", alpha=0.3)))


def test_topk_orders_by_score_then_index():
    preds = topk(np.array([0.1, 0.4, 0.4, 0.05]), ["a", "b", "c", "d"], k=3)
    assert [(p.label, p.index) for p in preds] == [("b", 1), ("c", 2), ("a", 0)]
    with pytest.raises(ValueError, match="3 labels for 4 scores"):
        topk(np.zeros(4), ["a", "b", "c"])
