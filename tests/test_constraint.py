"""The knowledge-constraint maths on hand-made tensors, checked against numbers by hand."""

from __future__ import annotations

import math

import pytest
import torch

from grounded.losses import (
    CONSTRAINTS,
    get_constraint,
    log1mexp,
    margin_loss,
    sequence_logprobs,
    unlikelihood_loss,
)
from grounded.training.trainer import loss_terms


def test_margin_loss_by_hand():
    gold = torch.tensor([-1.0, -2.0])
    neg = torch.tensor([[-1.5, -4.0], [-1.0, -9.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    # pairs: 1 - (-1 + 1.5) = 0.5; 1 - (-1 + 4) < 0 -> 0; 1 - (-2 + 1) = 2; the last is masked
    expected = (0.5 + 0.0 + 2.0) / 3
    assert margin_loss(gold, neg, mask, margin=1.0).item() == pytest.approx(expected)
    assert margin_loss(gold, neg, mask, margin=0.0).item() == pytest.approx(1.0 / 3)


def test_unlikelihood_loss_by_hand():
    neg = torch.log(torch.tensor([[0.5, 0.25], [0.9, 0.1]]))
    mask = torch.tensor([[1, 1], [0, 1]])
    expected = (-math.log(0.5) - math.log(0.75) - math.log(0.9)) / 3
    assert unlikelihood_loss(neg, mask).item() == pytest.approx(expected, rel=1e-5)


def test_log1mexp_is_stable_at_both_ends():
    x = torch.tensor([-1e-8, -1e-3, -0.5, -5.0, -50.0], dtype=torch.float64)
    got = log1mexp(x)
    ref = torch.log(1 - torch.exp(x.clamp(max=-1e-6)))
    assert torch.isfinite(got).all()
    assert torch.allclose(got[1:], ref[1:], rtol=1e-6)
    assert got[-1].item() == pytest.approx(-math.exp(-50.0), rel=1e-6)


def test_empty_mask_gives_zero_with_a_gradient():
    gold = torch.zeros(2, requires_grad=True)
    neg = torch.zeros(2, 3, requires_grad=True)
    loss = margin_loss(gold, neg, torch.zeros(2, 3))
    loss.backward()
    assert loss.item() == 0.0
    assert gold.grad is not None and torch.equal(gold.grad, torch.zeros(2))
    empty = margin_loss(torch.zeros(0), torch.zeros(0, 3), torch.zeros(0, 3))
    assert empty.item() == 0.0


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


def test_registry_and_errors():
    assert CONSTRAINTS.names() == ["margin", "unlikelihood"]
    assert get_constraint("margin", margin=2.0).margin == 2.0
    assert not get_constraint("unlikelihood", length_normalize=True).uses_mean()
    with pytest.raises(ValueError, match=r"`constraint` must be one of \['margin', "):
        get_constraint("hinge")


def test_loss_terms_by_hand():
    # prompt 0: gold row 0, negatives rows 1, 2; prompt 1: gold row 3, none;
    # prompt 2 (feedback): gold row 4, negative row 5.
    logp = torch.tensor([-2.0, -1.0, -6.0, -4.0, -3.0, -1.0])
    n_tokens = torch.tensor([2.0, 1.0, 3.0, 2.0, 3.0, 1.0])
    gold_rows = torch.tensor([0, 3, 4])
    neg_rows = torch.tensor([[1, 2], [-1, -1], [5, -1]])
    is_feedback = torch.tensor([False, False, True])
    terms = loss_terms(logp, n_tokens, gold_rows, neg_rows, is_feedback, get_constraint("margin"))
    assert terms.lm.item() == pytest.approx((2.0 + 4.0) / (2.0 + 2.0))
    # margin 1 on sums: 1 - (-2 + 1) = 2; 1 - (-2 + 6) < 0 -> 0
    assert terms.constraint.item() == pytest.approx(1.0)
    assert terms.feedback.item() == pytest.approx(1 - (-3.0 + 1.0))
    # per-token means: gold -1, negatives -1 and -2 -> 1 - 0 = 1 and 1 - 1 = 0
    normalized = get_constraint("margin", length_normalize=True)
    terms = loss_terms(logp, n_tokens, gold_rows, neg_rows, is_feedback, normalized)
    assert terms.constraint.item() == pytest.approx(0.5)
