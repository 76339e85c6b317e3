"""Generic test cases, one per interface, each test written once (pykeen's ``tests/cases.py``).

A registered implementation is tested by a short subclass in the interface's test module::

    class TestLora(cases.AdapterCase):
        name = "lora"

and :class:`MetaTestCase` fails when a registered name has no such subclass. The base
classes' names do not start with ``Test``, so pytest collects only the subclasses.

Interfaces: adapters (``grounded.training.ADAPTERS``), injection modes
(``grounded.injection.INJECTIONS``), constraint losses (``grounded.losses.CONSTRAINTS``) and
index kinds (``index.config.FACTORIES``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import pytest
import torch

# -- meta --------------------------------------------------------------------------------------


def subclasses(base: type) -> list[type]:
    """Every subclass of ``base``, at any depth."""
    out = []
    for cls in base.__subclasses__():
        out += [cls, *subclasses(cls)]
    return out


class MetaTestCase:
    """Every registered member of an interface has a test case, and every case a member.

    Set ``base`` (the generic case), ``attribute`` (the case's attribute naming the member)
    and implement :meth:`registered`.
    """

    base: ClassVar[type]
    attribute: ClassVar[str] = "name"

    def registered(self) -> Iterable[str]:
        raise NotImplementedError

    def test_every_registered_member_has_a_test_case(self):
        tested = [getattr(c, self.attribute) for c in subclasses(self.base)]
        registered = set(self.registered())
        missing = sorted(registered - set(tested))
        assert not missing, f"no {self.base.__name__} subclass for {missing}: add one"
        stale = sorted(set(tested) - registered)
        assert not stale, f"{self.base.__name__} subclasses for unregistered {stale}"
        assert len(tested) == len(set(tested)), f"a member is tested twice: {sorted(tested)}"


# -- adapters ----------------------------------------------------------------------------------

LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def grounding_model(base, kb, adapter="lora", modes=("text", "embedding"), entity_vectors=False):
    """A :class:`GroundingModel` (adapter + injection) on the tiny base, and its Batcher."""
    from grounded.injection import InjectionConfig, get_injection
    from grounded.model.artifacts import load_base
    from grounded.model.batch import Batcher
    from grounded.model.grounding import GroundingModel
    from grounded.training import TrainConfig
    from grounded.training.adapters import get_adapter_model

    torch.manual_seed(0)
    tokenizer, lm = load_base(base)
    injection = get_injection(
        InjectionConfig(
            modes=list(modes), evidence_dim=kb.index.dimension, hidden_size=16,
            entity_vectors=entity_vectors,
        ),
        lm,
    )  # fmt: skip
    config = TrainConfig(adapter=adapter, lora_dropout=0.0, num_virtual_tokens=3)
    model = GroundingModel(get_adapter_model(lm, config), injection)
    batcher = Batcher(
        tokenizer, kb, reads_vectors=injection.reads_vectors,
        reads_entities=injection.reads_entities,
    )  # fmt: skip
    return model, batcher


def batch_of(batcher, examples):
    """The batcher's tensors, and the row layout the loss takes (popped from them)."""
    batch = batcher(examples)
    layout = {k: batch.pop(k) for k in ("gold_rows", "neg_rows", "is_feedback")}
    return batch, layout


def training_loss(model, batch, layout):
    """LM + margin-constraint loss of one batch (what the trainer minimises)."""
    from grounded.losses import get_constraint
    from grounded.training import loss_terms

    token_logp = model(**batch)
    terms = loss_terms(
        token_logp, batch["answer_ids"], batch["answer_mask"], **layout,
        constraint=get_constraint("margin"),
    )  # fmt: skip
    return terms.lm + terms.constraint


class AdapterCase:
    """A PEFT adapter of the registry on a tiny Llama: wraps, trains, counts, round-trips.

    Needs the session fixtures ``tiny_base``, ``tiny_kb`` and ``tiny_examples``.
    """

    name: ClassVar[str]
    #: extra TrainConfig settings for the end-to-end run (cover another path with them)
    settings: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def built(self, tiny_base, tiny_kb):
        return grounding_model(tiny_base, tiny_kb, adapter=self.name)

    def test_wraps_the_lm_in_its_peft_config(self, built):
        from grounded.training import TrainConfig
        from grounded.training.adapters import ADAPTERS

        model, _ = built
        want = ADAPTERS.get(self.name)(TrainConfig(adapter=self.name))
        assert type(model.lm.active_peft_config) is type(want)
        assert model.prompt_learning == want.is_prompt_learning

    def test_trainable_parameters_are_counted_by_peft(self, built):
        from grounded.model.grounding import trainable_parameters

        model, _ = built
        params = list(model.parameters())
        by_hand = {
            "trainable": sum(p.numel() for p in params if p.requires_grad),
            "total": sum(p.numel() for p in params),
        }
        assert trainable_parameters(model) == by_hand
        peft_count = model.lm.get_nb_trainable_parameters()
        assert (
            trainable_parameters(model.lm)["trainable"],
            trainable_parameters(model.lm)["total"],
        ) == peft_count
        assert 0 < peft_count[0] < peft_count[1] / 2  # an adapter, not the whole model

    def test_a_few_steps_change_only_trainable_parameters_and_lower_the_loss(
        self, built, tiny_examples
    ):
        model, batcher = built
        batch, layout = batch_of(batcher, tiny_examples)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-2)
        losses = []
        for _ in range(4):
            optimizer.zero_grad()
            loss = training_loss(model, batch, layout)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0], losses
        after = dict(model.named_parameters())
        changed = {n for n, p in before.items() if not torch.equal(p, after[n].detach())}
        assert any(n.startswith("lm.") for n in changed)  # the adapter itself trained
        assert all(after[n].requires_grad for n in changed)  # the base stayed frozen

    def test_save_load_round_trip_scores_the_same(self, built, tiny_base, tiny_examples, tmp_path):
        from peft import PeftModel

        from grounded.model.artifacts import load_base
        from grounded.model.grounding import GroundingModel

        model, batcher = built
        with torch.no_grad():  # move the adapter off its initialisation (LoRA's B starts at 0)
            for p in model.lm.parameters():
                if p.requires_grad:
                    p.add_(0.05 * torch.randn_like(p))
        model.lm.save_pretrained(tmp_path)
        _, fresh = load_base(tiny_base)
        reloaded = GroundingModel(PeftModel.from_pretrained(fresh, str(tmp_path)), model.injection)
        batch, _ = batch_of(batcher, tiny_examples)
        model.eval()
        reloaded.eval()
        with torch.no_grad():
            want, got = model(**batch), reloaded(**batch)
            with reloaded.lm.disable_adapter():
                plain = reloaded(**batch)
        assert torch.allclose(got, want, atol=1e-5)
        assert not torch.allclose(plain, want, atol=1e-3)  # the adapter matters

    def test_pipeline_trains_and_the_folder_answers_alike(self, tmp_path, tiny_kb, tiny_base):
        from grounded.model import GroundedModel, read_grounding
        from grounded.training import TrainConfig, train

        config = TrainConfig(
            adapter=self.name, max_steps=2, batch_size=4, learning_rate=2e-2, lora_dropout=0.0,
            injection_hidden=16, feedback_every=2, feedback_samples=2, logging_steps=1,
            save_steps=1000, out_of_kb=4, max_new_tokens=8, **self.settings,
        )  # fmt: skip
        result = train(tiny_kb, tiny_base, tmp_path / self.name, config, show_progress=False)
        assert result.steps == 2 and len(result.feedback) == 2
        grounding = read_grounding(result.out)
        assert grounding["adapter"]["name"] == self.name
        assert grounding["adapter"]["trainable_parameters"] > 0
        question = ["What is the capital of Mongolia?"]
        in_memory = GroundedModel(result.model, result.tokenizer, tiny_kb, grounding)
        reloaded = GroundedModel.from_pretrained(result.out, tiny_kb)
        assert [a.text for a in in_memory.answer(question)] == [
            a.text for a in reloaded.answer(question)
        ]


# -- injection modes ---------------------------------------------------------------------------


class InjectionCase:
    """One injection mode of the registry, alone in a :class:`KnowledgeInjection`, on
    hand-made tensors: flags, shapes and masks, gradients, save/load.

    Set ``name``, and ``soft_tokens`` to the tokens the mode adds per present evidence
    item at ``soft_tokens_per_fact=2`` (0 for a mode that works on the prompt text).
    """

    name: ClassVar[str]
    soft_tokens: ClassVar[int]
    #: settings of the layer under test (beside ``modes``)
    settings: ClassVar[dict[str, Any]] = {}

    def layer(self):
        from grounded.injection import InjectionConfig, KnowledgeInjection

        torch.manual_seed(0)
        config = InjectionConfig(
            modes=[self.name], evidence_dim=6, d_model=8, soft_tokens_per_fact=2, hidden_size=4,
            **self.settings,
        )  # fmt: skip
        return KnowledgeInjection(config)

    @staticmethod
    def inputs():
        """(2, 5, 8) embeddings, row 0 left-padded; 3 evidence slots, one absent in row 0."""
        from grounded.injection import EvidenceTensors

        generator = torch.Generator().manual_seed(1)
        embeds = torch.randn(2, 5, 8, generator=generator)
        mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
        evidence = EvidenceTensors(
            torch.randn(2, 3, 6, generator=generator),
            torch.tensor([[1, 1, 0], [1, 1, 1]]),
            torch.randn(2, 1, 6, generator=generator),
            torch.tensor([[[0, 0, 1, 0, 0]], [[0, 1, 1, 0, 0]]]),
        )
        return embeds, mask, evidence

    def test_flags_match_the_registered_class(self):
        from grounded.injection import INJECTIONS

        layer, cls = self.layer(), INJECTIONS.get(self.name)
        assert isinstance(layer.modes[self.name], cls)
        assert (layer.writes_text, layer.reads_vectors) == (cls.writes_text, cls.reads_vectors)
        assert layer.uses_evidence and layer.config.name == self.name

    def test_shapes_and_masks_on_hand_made_tensors(self):
        embeds, mask, evidence = self.inputs()
        out, out_mask = self.layer()(embeds, mask, evidence)
        m = self.soft_tokens
        assert out.shape == (2, 5 + 3 * m, 8) and out_mask.shape == (2, 5 + 3 * m)
        # every present evidence item adds m real positions; the text keeps its own
        assert out_mask.sum(1).tolist() == [3 + 2 * m, 5 + 3 * m]
        # still left-padded (padding first, then one block of real positions), and the
        # prompt's own tokens end each row, unchanged off the mentions (tokens 2 of row 0,
        # 1-2 of row 1: entity vectors only touch those)
        assert torch.equal(out_mask, out_mask.sort(dim=1).values)
        assert torch.equal(out[0, -2:], embeds[0, 3:])
        assert torch.equal(out[1, -5:][[0, 3, 4]], embeds[1, [0, 3, 4]])

    def test_every_parameter_gets_a_gradient(self):
        layer = self.layer()
        embeds, mask, evidence = self.inputs()
        embeds.requires_grad_(True)
        out, out_mask = layer(embeds, mask, evidence)
        (out * out_mask[..., None]).square().sum().backward()
        assert embeds.grad is not None and embeds.grad.abs().sum() > 0
        # DistributedDataParallel needs every parameter in the graph of every step
        assert all(p.grad is not None for p in layer.parameters())

    def test_save_load_round_trip(self, tmp_path):
        from grounded.injection import KnowledgeInjection
        from grounded.injection.layer import WEIGHTS_NAME

        layer = self.layer()
        with torch.no_grad():  # off the initialisation, so the weights must really load
            for p in layer.parameters():
                p.add_(0.1 * torch.randn_like(p))
        layer.save_pretrained(tmp_path)
        again = KnowledgeInjection.from_pretrained(tmp_path)
        assert again.config == layer.config
        assert (tmp_path / WEIGHTS_NAME).is_file() == bool(list(layer.parameters()))
        embeds, mask, evidence = self.inputs()
        for a, b in zip(again(embeds, mask, evidence), layer(embeds, mask, evidence), strict=True):
            assert torch.equal(a, b)


# -- constraint losses -------------------------------------------------------------------------

#: hand-made (gold (B,), negatives (B, N), mask (B, N)) log-probabilities; as probabilities
#: the pairs (gold, negative) are (0.5, 0.5), (0.5, 0.25), (0.3, 0.9), and (0.3, 0.1) masked
GOLD = [math.log(0.5), math.log(0.3)]
NEG = [[math.log(0.5), math.log(0.25)], [math.log(0.9), math.log(0.1)]]
MASK = [[1, 1], [1, 0]]


class ConstraintCase:
    """One constraint loss of the registry on hand-made log-probabilities.

    Set ``name``, ``settings`` (constructor arguments) and ``by_hand``: the loss of
    :data:`GOLD`, :data:`NEG`, :data:`MASK` worked out by hand (say how in a comment).
    ``pushes_gold`` says whether the loss raises the gold answer too, or leaves it to the
    LM loss.
    """

    name: ClassVar[str]
    settings: ClassVar[dict[str, Any]] = {}
    by_hand: ClassVar[float]
    pushes_gold: ClassVar[bool] = True

    def loss(self):
        from grounded.losses import get_constraint

        return get_constraint(self.name, **self.settings)

    @staticmethod
    def tensors(requires_grad=False):
        gold = torch.tensor(GOLD, dtype=torch.float64, requires_grad=requires_grad)
        neg = torch.tensor(NEG, dtype=torch.float64, requires_grad=requires_grad)
        return gold, neg, torch.tensor(MASK)

    def test_value_by_hand(self):
        value = self.loss()(*self.tensors())
        assert value.dim() == 0
        assert value.item() == pytest.approx(self.by_hand, rel=1e-9)

    def test_gradient_pushes_negatives_down_and_ignores_masked_pairs(self):
        gold, neg, mask = self.tensors(requires_grad=True)
        self.loss()(gold, neg, mask).backward()
        # every counted pair is active here, so descent lowers every counted negative
        assert (neg.grad[mask.bool()] > 0).all()
        assert (neg.grad[~mask.bool()] == 0).all()
        gold_grad = torch.zeros_like(gold) if gold.grad is None else gold.grad
        if self.pushes_gold:
            assert (gold_grad <= 0).all() and gold_grad.sum() < 0  # ... and raises gold
        else:
            assert torch.equal(gold_grad, torch.zeros_like(gold))
        # a small step along the gradient lowers the loss
        with torch.no_grad():
            stepped = self.loss()(gold - 1e-2 * gold_grad, neg - 1e-2 * neg.grad, mask)
        assert stepped.item() < self.by_hand

    def test_no_pair_gives_zero_with_a_gradient(self):
        gold, neg, _ = self.tensors(requires_grad=True)
        loss = self.loss()(gold, neg, torch.zeros(2, 2))
        loss.backward()
        assert loss.item() == 0.0 and torch.equal(neg.grad, torch.zeros_like(neg))
        empty = self.loss()(torch.zeros(0), torch.zeros(0, 3), torch.zeros(0, 3))
        assert empty.item() == 0.0

    def test_settings_are_kept(self):
        loss = self.loss()
        for key, value in self.settings.items():
            assert getattr(loss, key) == value
        assert loss.scope in ("divergence", "sequence")
