"""The knowledge-constraint maths on hand-made tensors, checked against numbers by hand."""

from __future__ import annotations

import math
from typing import ClassVar

import cases
import pytest
import torch

from grounded.losses import (
    CONSTRAINTS,
    get_constraint,
    log1mexp,
    margin_loss,
    pair_logprobs,
    sequence_logprobs,
    token_logprobs,
)
from grounded.training.trainer import loss_terms


def test_log1mexp_is_stable_at_both_ends():
    x = torch.tensor([-1e-8, -1e-3, -0.5, -5.0, -50.0], dtype=torch.float64)
    got = log1mexp(x)
    ref = torch.log(1 - torch.exp(x.clamp(max=-1e-6)))
    assert torch.isfinite(got).all()
    assert torch.allclose(got[1:], ref[1:], rtol=1e-6)
    assert got[-1].item() == pytest.approx(-math.exp(-50.0), rel=1e-6)


def test_sequence_logprobs_by_hand():
    probs = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]]).repeat(
        2, 1, 1
    )  # (R=2, T=3, V=3)
    targets = torch.tensor([[0, 1, 2], [2, 0, 0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    logp, n = sequence_logprobs(torch.log(probs), targets, mask)
    assert logp[0].item() == pytest.approx(math.log(0.5) + math.log(0.8), rel=1e-5)
    assert logp[1].item() == pytest.approx(math.log(0.25 * 0.1 / 3), rel=1e-5)
    assert n.tolist() == [2.0, 3.0]


class TestMargin(cases.ConstraintCase):
    name = "margin"
    settings: ClassVar = {"margin": 1.0}
    # mean of 1 - log(gold / neg): 1 - log 1, 1 - log 2, 1 - log(1/3) = 1 + log(3/2) / 3
    by_hand = 1 + math.log(1.5) / 3


class TestUnlikelihood(cases.ConstraintCase):
    name = "unlikelihood"
    # mean of -log(1 - p): log 2, log(4/3), log 10 = log(80/3) / 3; gold is the LM loss's job
    by_hand = math.log(80 / 3) / 3
    pushes_gold = False


class TestConstraintCoverage(cases.MetaTestCase):
    base = cases.ConstraintCase

    def registered(self):
        return CONSTRAINTS.names()


def test_registry_and_errors():
    assert CONSTRAINTS.names() == ["margin", "unlikelihood"]
    assert get_constraint("margin", margin=2.0).margin == 2.0
    assert not get_constraint("unlikelihood", length_normalize=True).uses_mean()
    with pytest.raises(ValueError, match=r"`constraint` must be one of \['margin', "):
        get_constraint("hinge")


def test_first_divergence_and_pair_logprobs_by_hand():
    # rows: 0 gold [5, 6, 2]; 1 neg [5, 7, 2] (differs at 1); 2 neg [8, 2] (differs at 0);
    # 3 gold [9, 2]; 4 neg [9, 2] (identical: no pair)
    ids = torch.tensor([[5, 6, 2], [5, 7, 2], [8, 2, 0], [9, 2, 0], [9, 2, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 0], [1, 1, 0]])
    logp = torch.tensor(
        [
            [-0.1, -0.2, -0.3],
            [-0.1, -2.0, -0.4],
            [-3.0, -0.5, 0.0],
            [-1.0, -1.0, 0],
            [-1.0, -1.0, 0],
        ]
    )
    gold_rows, neg_rows = torch.tensor([0, 3]), torch.tensor([[1, 2], [4, -1]])
    gold, neg, valid = pair_logprobs(logp, ids, mask, gold_rows, neg_rows)
    assert valid.tolist() == [[True, True], [False, False]]
    assert gold[0].tolist() == pytest.approx([-0.2, -0.1])  # gold at positions 1 and 0
    assert neg[0].tolist() == pytest.approx([-2.0, -3.0])
    gold, neg, valid = pair_logprobs(logp, ids, mask, gold_rows, neg_rows, scope="sequence")
    assert gold[0].tolist() == pytest.approx([-0.6, -0.6])
    assert neg[0].tolist() == pytest.approx([-2.5, -3.5])
    assert valid.tolist() == [[True, True], [True, False]]
    with pytest.raises(ValueError, match="`scope` must be one of"):
        pair_logprobs(logp, ids, mask, gold_rows, neg_rows, scope="tokens")


def test_divergence_gradient_moves_mass_between_the_two_tokens_only():
    """At the split, the margin's gradient is e_neg - e_gold on the logits: no mass goes to
    unrelated tokens (the failure mode of pushing whole negative sequences down)."""
    logits = torch.zeros(2, 1, 4, requires_grad=True)  # gold row 0 -> token 1, neg row 1 -> 2
    ids, mask = torch.tensor([[1], [2]]), torch.ones(2, 1)
    tl = token_logprobs(logits, ids, mask)
    gold, neg, valid = pair_logprobs(tl, ids, mask, torch.tensor([0]), torch.tensor([[1]]))
    margin_loss(gold, neg, valid).backward()
    g = logits.grad  # rows 0 and 1 share the same context in a real batch; sum them
    assert (g[0, 0] + g[1, 0]).tolist() == pytest.approx([0.0, -1.0, 1.0, 0.0])


def test_loss_terms_by_hand():
    # prompt 0: gold row 0, negatives rows 1, 2; prompt 1: gold row 3, none;
    # prompt 2 (feedback): gold row 4, negative row 5. One token per row.
    token_logp = torch.tensor([[-2.0], [-1.0], [-6.0], [-4.0], [-3.0], [-1.0]])
    ids = torch.tensor([[1], [2], [3], [4], [5], [6]])
    mask = torch.ones(6, 1)
    gold_rows = torch.tensor([0, 3, 4])
    neg_rows = torch.tensor([[1, 2], [-1, -1], [5, -1]])
    is_feedback = torch.tensor([False, False, True])
    args = (token_logp, ids, mask, gold_rows, neg_rows, is_feedback)
    terms = loss_terms(*args, get_constraint("margin"))
    assert terms.lm.item() == pytest.approx((2.0 + 4.0) / 2)
    # margin 1: 1 - (-2 + 1) = 2; 1 - (-2 + 6) < 0 -> 0
    assert terms.constraint.item() == pytest.approx(1.0)
    assert terms.feedback.item() == pytest.approx(1 - (-3.0 + 1.0))
    ul = loss_terms(*args, get_constraint("unlikelihood"))
    expected = (-math.log(1 - math.exp(-1.0)) - math.log(1 - math.exp(-6.0))) / 2
    assert ul.constraint.item() == pytest.approx(expected, rel=1e-5)
    # sequence scope with per-token means: two-token rows halve the sums
    two = torch.cat([token_logp, token_logp], 1)
    ids2, mask2 = torch.cat([ids, ids], 1), torch.ones(6, 2)
    mean = get_constraint("margin", scope="sequence", length_normalize=True)
    terms = loss_terms(two, ids2, mask2, gold_rows, neg_rows, is_feedback, mean)
    assert terms.constraint.item() == pytest.approx(1.0)
    assert terms.lm.item() == pytest.approx((4.0 + 8.0) / 4)
