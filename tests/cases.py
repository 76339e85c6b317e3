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

import hashlib
import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
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


def grounding_model(base, kb, adapter="lora", modes=("text", "embedding"), entity_vectors=False):
    """A :class:`GroundingModel` (adapter + injection) on the tiny base, and its Batcher."""
    from grounded.injection import InjectionConfig, get_injection
    from grounded.model.artifacts import load_base
    from grounded.model.batch import Batcher
    from grounded.model.grounding import GroundingModel
    from grounded.training.adapters import AdapterConfig, get_adapter_model

    torch.manual_seed(0)
    tokenizer, lm = load_base(base)
    injection = get_injection(
        InjectionConfig(
            modes=list(modes), evidence_dim=kb.index.dimension, hidden_size=16,
            entity_vectors=entity_vectors,
        ),
        lm,
    )  # fmt: skip
    config = AdapterConfig(name=adapter, lora_dropout=0.0, num_virtual_tokens=3)
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
        from grounded.training.adapters import AdapterConfig

        model, _ = built
        want = AdapterConfig(name=self.name).peft_config(model.lm.get_base_model())
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
        from grounded.config import update_config
        from grounded.model import GroundedModel, read_grounding
        from grounded.training import TrainConfig, train

        config = update_config(TrainConfig(), dict(
            adapter=self.name, max_steps=2, batch_size=4, learning_rate=2e-2, lora_dropout=0.0,
            injection_hidden=16, feedback_every=2, feedback_samples=2, logging_steps=1,
            save_steps=1000, out_of_kb=4, max_new_tokens=8, **self.settings,
        ))  # fmt: skip
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
        # still left-padded (padding first, then one block of real positions); the prompt's
        # first token opens the block when soft tokens keep it first (soft_token_offset 1),
        # its other tokens end each row, unchanged off the mentions (tokens 2 of row 0, 1-2
        # of row 1: entity vectors only touch those)
        assert torch.equal(out_mask, out_mask.sort(dim=1).values)
        assert torch.equal(out[0, -2:], embeds[0, 3:])
        assert torch.equal(out[1, -4:][[2, 3]], embeds[1, [3, 4]])
        first = out_mask.argmax(1)  # (2,) where each row's real block starts
        if m and self.layer().config.soft_token_offset:
            assert torch.equal(out[0, first[0]], embeds[0, 2])  # entity projection starts at 0
            assert torch.equal(out[1, first[1]], embeds[1, 0])

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


# -- index kinds -------------------------------------------------------------------------------


class HashEncoder:
    """Deterministic fake encoder: text -> seeded random vector, or ``table[text]``."""

    def __init__(self, dimension=16, name="hash-encoder", normalize=True, table=None):
        self.dimension, self.name, self.normalize = dimension, name, normalize
        self.table = table or {}
        self.calls = 0

    def vector(self, text):
        if text in self.table:
            v = np.asarray(self.table[text], dtype=np.float64)
        else:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dimension)
        return v / np.linalg.norm(v) if self.normalize else v

    def encode(self, texts, *, batch_size=None, show_progress=False):
        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self.vector(t)
        return out


def records(n, prefix="fact"):
    return [{"key": f"{prefix}:{i}", "text": f"{prefix} sentence {i}", "n": i} for i in range(n)]


def brute_force(matrix, queries, k):
    """Ids (row numbers) and scores of the top-k inner products, best first (numpy)."""
    scores = queries @ matrix.T  # (n_queries, n)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(scores, top, axis=1)


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng, centres, n):
    """``n`` unit vectors scattered around random ``centres`` (clusters, d)."""
    x = centres[rng.integers(len(centres), size=n)] + 0.2 * rng.standard_normal(
        (n, centres.shape[1])
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall(found, truth):
    """Mean share of each true top-k row found."""
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


class IndexCase:
    """One FAISS index kind of ``index.config.FACTORIES`` under a :class:`FactIndex`, checked
    against brute-force numpy search on random vectors: search, recall, add/remove, the
    stored vectors, save/load.

    Set ``kind``; ``settings`` (IndexConfig) for 200 random 16-d records; ``exact``: with
    them, ids and scores equal brute force (else ``recall@k >= approx_recall``); and
    ``min_recall``, the recall@10 against exact search on 4,000 clustered 32-d vectors with
    the kind's defaults plus ``recall_settings``.
    """

    kind: ClassVar[str]
    settings: ClassVar[dict[str, Any]] = {}
    exact: ClassVar[bool] = True
    approx_recall: ClassVar[float] = 1.0
    min_recall: ClassVar[float]
    recall_settings: ClassVar[dict[str, Any]] = {}
    #: the fewest records the kind builds from (IVF-PQ trains 2**pq_nbits centroids)
    few: ClassVar[int] = 5

    @pytest.fixture(autouse=True, scope="class")
    def faiss_one_thread(self):
        """FAISS on one OpenMP thread: on a busy 2-core machine two threads spin-wait, and
        training 16 product quantizers on 200 points took 0.1-5 s instead of 15 ms."""
        import faiss

        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        yield
        faiss.omp_set_num_threads(before)

    def config(self, **overrides):
        from index import IndexConfig

        return IndexConfig(kind=self.kind, **{**self.settings, **overrides})

    @pytest.fixture
    def built(self):
        from index import FactIndex

        return FactIndex.build(records(200), HashEncoder(), self.config(), show_progress=False)

    def test_builds_its_kind_through_the_factory(self, built):
        from index.config import FACTORIES, factory_string, kind_of

        assert built.config.kind == self.kind and kind_of(built._faiss) == self.kind
        assert factory_string(built.config, 16) == FACTORIES[self.kind](built.config, 16)
        assert built._faiss.metric_type == 0  # METRIC_INNER_PRODUCT: cosine on unit vectors
        assert len(built) == 200 and built.ids == list(range(200))

    @pytest.mark.parametrize("k", [1, 5, 10])
    def test_search_matches_brute_force(self, built, k):
        matrix = built.encoder.encode([r["text"] for r in records(200)])
        queries = unit(np.random.default_rng(0), 20, 16)
        ids, scores = brute_force(matrix, queries, k)
        hits = built.search_vectors(queries, k)
        found = [[h.id for h in row] for row in hits]
        got = np.array([[h.score for h in row] for row in hits])
        if self.exact:
            assert found == ids.tolist()
            np.testing.assert_allclose(got, scores, atol=1e-5)
        else:
            assert recall(found, ids.tolist()) >= self.approx_recall
            exact_scores = np.take_along_axis(queries @ matrix.T, np.array(found), axis=1)
            np.testing.assert_allclose(got, exact_scores, atol=0.1)  # approximate scores
        for row in hits:
            assert all(h.record["key"] == f"fact:{h.id}" for h in row)
            assert [h.score for h in row] == sorted((h.score for h in row), reverse=True)

    def test_search_text_finds_its_own_record(self, built):
        hit = built.search("fact sentence 42", k=3)[0]
        assert (hit.id, hit.record["key"], hit.record["n"]) == (42, "fact:42", 42)
        assert hit.score == pytest.approx(1.0, abs=1e-5 if self.exact else 0.05)
        batch = built.search_batch(["fact sentence 7", "fact sentence 9"], k=2)
        assert [row[0].id for row in batch] == [7, 9]

    def test_k_larger_than_the_index_returns_every_record_once(self):
        from index import FactIndex

        idx = FactIndex.build(
            records(self.few), HashEncoder(), self.config(nlist=2), show_progress=False
        )
        hits = idx.search("anything", k=self.few + 45)
        assert sorted(h.id for h in hits) == list(range(self.few))  # FAISS's -1 padding gone

    def test_recall_at_10_against_exact_search(self):
        from index import FactIndex, IndexConfig, recall_against_exact

        rng = np.random.default_rng(1)
        centres = unit(rng, 40, 32)
        x, q = clustered(rng, centres, 4000), clustered(rng, centres, 100)
        table = {f"v{i}": x[i] for i in range(len(x))}
        recs = [{"key": t, "text": t} for t in table]
        config = IndexConfig(kind=self.kind, **self.recall_settings)
        idx = FactIndex.build(recs, HashEncoder(32, table=table), config, show_progress=False)
        truth, _ = brute_force(x, q, 10)
        measured = recall([[h.id for h in row] for row in idx.search_vectors(q, 10)], truth)
        assert measured >= self.min_recall
        if self.exact:  # against the stored vectors, which are the embeddings themselves
            assert recall_against_exact(idx, q, 10) == pytest.approx(measured, abs=1e-9)

    def test_add_remove_get_id_of(self, built):
        new = built.add(records(3, prefix="extra"))
        assert new == [200, 201, 202] and len(built) == 203
        assert built.id_of("extra:1") == 201 and built.get(201)["text"] == "extra sentence 1"
        assert 201 in built and 999 not in built
        assert (
            202 in [h.id for h in built.search("extra sentence 2", k=3)][: 1 if self.exact else 3]
        )

        assert built.remove([201, 5, 5]) == 2
        assert len(built) == 201 and 201 not in built and 5 not in built
        assert 5 not in built.ids and built.ids == sorted(built.ids)
        with pytest.raises(KeyError, match="extra:1"):
            built.id_of("extra:1")
        with pytest.raises(KeyError, match="201"):
            built.get(201)
        with pytest.raises(KeyError, match="5"):
            built.vectors([5])
        every = built.search_vectors(unit(np.random.default_rng(5), 30, 16), k=1000)
        assert all({h.id for h in row} == set(built.ids) for row in every)  # removed: never

        assert built.add(records(1, prefix="later")) == [203]  # ids are never reused
        built.add([{"key": "extra:1", "text": "extra sentence 1"}])  # a removed key may return

    def test_remove_unknown_id_removes_nothing(self, built):
        with pytest.raises(KeyError, match="12345"):
            built.remove([3, 12345])
        assert 3 in built and len(built) == 200
        assert built.remove([]) == 0

    def test_vectors_are_the_stored_embeddings(self, built):
        got = built.vectors([3, 0, 199])
        want = built.encoder.encode(["fact sentence 3", "fact sentence 0", "fact sentence 199"])
        assert got.shape == (3, 16) and got.dtype == np.float32
        if self.exact:
            np.testing.assert_allclose(got, want, atol=1e-6)
        else:  # decoded codes: close in angle
            cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1)
            assert (cosine > 0.99).all(), cosine

    def test_get_returns_a_copy(self, built):
        built.get(1)["text"] = "changed"
        assert built.get(1)["text"] == "fact sentence 1"

    def test_save_load_round_trip(self, built, tmp_path):
        import json

        from index import FactIndex

        built.add(records(5, prefix="extra"))
        built.remove([0, 17, 201])
        out = built.save(tmp_path / "idx")
        assert sorted(p.name for p in out.iterdir()) == [
            "index.faiss",
            "manifest.json",
            "meta.jsonl",
        ]
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["count"] == len(built) == 202 and manifest["next_id"] == 205
        assert manifest["encoder"] == {
            "name": "hash-encoder", "path": None, "dimension": 16, "normalize": True,
        }  # fmt: skip
        assert manifest["index"]["kind"] == self.kind
        assert set(manifest["checksums"]) == {"index.faiss", "meta.jsonl"}
        assert {"faiss", "numpy"} <= {
            k.replace("-", "_").split("_")[0] for k in manifest["versions"]
        }
        lines = [json.loads(line) for line in (out / "meta.jsonl").read_text().splitlines()]
        assert [row["id"] for row in lines] == built.ids

        again = FactIndex.load(out, HashEncoder())
        assert again.ids == built.ids and again.config == built.config
        q = unit(np.random.default_rng(6), 25, 16)
        assert again.search_vectors(q, 7) == built.search_vectors(q, 7)
        assert again.add(records(1, prefix="after")) == [205]
        np.testing.assert_array_equal(again.vectors([1, 2]), built.vectors([1, 2]))


# -- extractors (grounded.extract.EXTRACTORS) ----------------------------------------------


class ExtractorCase:
    """A registered extractor on hand-written sentences of a small books schema.

    Subclasses set ``name`` and ``expected``: the (subject, relation, object) triples worked
    out by hand from :attr:`SENTENCES` for that extractor.
    """

    name: ClassVar[str]
    expected: ClassVar[set[tuple[str, str, str]]]
    SENTENCES: ClassVar[list[str]] = [
        "The novel Dune was written by Frank Herbert in 1965.",
        "Chilton Books published Dune.",
        "Frank Herbert was born in Tacoma, Washington.",
        "Good Omens was written by Terry Pratchett and Neil Gaiman.",
        "The weather in Tacoma was mild that year.",  # a distractor: no relation
    ]

    @staticmethod
    def schema():
        from kg import Relation, Schema

        return Schema([
            Relation("author", "{subject} was written by {object}.", ["Who wrote {subject}?"],
                     functional=False, subject_type="book", object_type="person"),
            Relation("publisher", "The publisher of {subject} is {object}.",
                     ["Who published {subject}?"], subject_type="book", object_type="company"),
            Relation("birthplace", "{subject} was born in {object}.",
                     ["Where was {subject} born?"], subject_type="person", object_type="place"),
        ])  # fmt: skip

    @pytest.fixture
    def run(self):
        from grounded.extract import get_extractors
        from kg.extract import EntityFinder, Sentence

        schema = self.schema()
        (extractor,) = get_extractors([self.name], schema, EntityFinder())
        sentences = [Sentence("books.txt", i, t, i) for i, t in enumerate(self.SENTENCES, 1)]
        return schema, sentences, extractor.extract(sentences)

    def test_reads_the_hand_worked_triples(self, run):
        _, _, candidates = run
        assert {(c.subject, c.relation, c.object) for c in candidates} == self.expected

    def test_output_stays_in_the_schema_and_the_text(self, run):
        schema, sentences, candidates = run
        by_source = {s.source: s for s in sentences}
        assert candidates
        for c in candidates:
            assert c.relation in schema
            sentence = by_source[c.sentence.source]
            assert c.subject_surface in sentence.text and c.object_surface in sentence.text
            assert 0.0 <= c.confidence <= 1.0
            assert self.name in c.extractor.split("+")
            t = c.triple()
            assert (t.source, t.extractor) == (sentence.source, c.extractor)

    def test_a_sentence_without_a_relation_gives_nothing(self, run):
        _, _, candidates = run
        assert not [c for c in candidates if c.sentence.index == 5]
