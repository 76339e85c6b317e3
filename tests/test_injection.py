"""Knowledge injection: the pure functions on hand-made tensors, the layer's shapes and masks,
save/load, and the generic path through two architectures (Llama, GPT-2) under PEFT."""

from __future__ import annotations

import json
from typing import ClassVar

import cases
import pytest
import torch

from grounded.injection import (
    INJECTIONS,
    EvidenceTensors,
    InjectionConfig,
    KnowledgeInjection,
    add_entity_vectors,
    parse_injection,
    position_ids_from_mask,
    prepend_soft_tokens,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_prepend_soft_tokens_right_and_left_padding():
    x = torch.tensor([[[1.0], [2.0], [0.0]], [[0.0], [3.0], [4.0]]])  # (2, 3, 1)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])  # right-padded, left-padded
    labels = torch.tensor([[5, 6, -100], [-100, 7, 8]])
    soft = torch.tensor([[[10.0], [11.0]], [[20.0], [21.0]]])  # (2, 2, 1)
    out = prepend_soft_tokens(x, mask, soft, labels=labels)
    assert out.inputs_embeds[..., 0].tolist() == [[10, 11, 1, 2, 0], [0, 20, 21, 3, 4]]
    assert out.attention_mask.tolist() == [[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]]
    assert out.labels.tolist() == [[-100, -100, 5, 6, -100], [-100, -100, -100, 7, 8]]


def test_soft_tokens_after_the_first_token_keep_the_attention_sink_first():
    x = torch.tensor([[[1.0], [2.0], [0.0]], [[0.0], [3.0], [4.0]], [[0.0], [0.0], [5.0]]])
    mask = torch.tensor([[1, 1, 0], [0, 1, 1], [0, 0, 1]])  # right, left, one real token
    labels = torch.tensor([[5, 6, -100], [-100, 7, 8], [-100, -100, 9]])
    soft = torch.tensor([[[10.0], [11.0]], [[20.0], [21.0]], [[30.0], [31.0]]])
    soft_mask = torch.tensor([[1, 1], [0, 1], [1, 1]])  # row 2's first slot is missing
    out = prepend_soft_tokens(x, mask, soft, soft_mask, labels=labels, offset=1)
    # worked out by hand: the first real token stays first, the soft block follows it
    assert out.inputs_embeds[..., 0].tolist() == [
        [1, 10, 11, 2, 0],
        [0, 20, 3, 21, 4],  # the masked slot (20) goes to the padding's side
        [0, 0, 5, 30, 31],  # fewer real tokens than the offset: after the last one
    ]
    assert out.attention_mask.tolist() == [[1, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert out.labels.tolist() == [
        [5, -100, -100, 6, -100],
        [-100, -100, 7, -100, 8],
        [-100, -100, 9, -100, -100],
    ]
    with pytest.raises(ValueError, match="offset"):
        prepend_soft_tokens(x, mask, soft, offset=-1)


def test_masked_soft_tokens_move_to_the_edge():
    x = torch.tensor([[[1.0], [2.0]]])
    soft = torch.tensor([[[10.0], [11.0], [12.0]]])
    out = prepend_soft_tokens(
        x, torch.ones(1, 2, dtype=torch.long), soft, torch.tensor([[1, 0, 1]])
    )
    # the missing slot (11) goes first, masked; valid soft tokens touch the text
    assert out.inputs_embeds[0, :, 0].tolist() == [11, 10, 12, 1, 2]
    assert out.attention_mask.tolist() == [[0, 1, 1, 1, 1]]
    empty = prepend_soft_tokens(x, torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 0, 1))
    assert empty.inputs_embeds.shape == (1, 2, 1)


def test_add_entity_vectors_and_positions():
    x = torch.zeros(1, 4, 2)
    ent = torch.tensor([[[1.0, 2.0], [10.0, 20.0]]])  # (1, E=2, 2)
    token_mask = torch.tensor([[[0, 1, 1, 0], [0, 0, 0, 1]]])
    out = add_entity_vectors(x, ent, token_mask)
    assert out[0].tolist() == [[0, 0], [1, 2], [1, 2], [10, 20]]
    assert position_ids_from_mask(torch.tensor([[0, 1, 1], [1, 1, 0]])).tolist() == [
        [0, 0, 1],
        [0, 1, 1],
    ]


def test_parse_injection_and_config_errors():
    assert parse_injection("text,embedding") == ("text", "embedding")
    assert parse_injection("embedding+text") == ("text", "embedding")
    assert parse_injection("none") == ()
    with pytest.raises(ValueError, match=r"`injection` must be `none` or names from"):
        parse_injection("text,graph")
    with pytest.raises(ValueError, match="`entity_vectors` needs the `embedding` mode"):
        InjectionConfig(modes=["text"], entity_vectors=True)
    with pytest.raises(ValueError, match="`d_model` is 0"):
        KnowledgeInjection(InjectionConfig(modes=["embedding"]))
    with pytest.raises(ValueError, match="`soft_tokens_per_fact` must be >= 1"):
        InjectionConfig(soft_tokens_per_fact=0)


def test_layer_shapes_masks_and_round_trip(tmp_path):
    config = InjectionConfig(
        modes=["text", "embedding"], evidence_dim=6, d_model=8, soft_tokens_per_fact=2,
        hidden_size=4, entity_vectors=True,
    )  # fmt: skip
    layer = KnowledgeInjection(config)
    assert layer.writes_text and layer.reads_vectors and layer.reads_entities
    embeds = torch.randn(2, 5, 8)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    evidence = EvidenceTensors(
        torch.randn(2, 3, 6),
        torch.tensor([[1, 1, 0], [1, 1, 1]]),
        torch.randn(2, 1, 6),
        torch.zeros(2, 1, 5, dtype=torch.long),
    )
    out, out_mask = layer(embeds, mask, evidence)
    assert out.shape == (2, 5 + 3 * 2, 8)
    assert out_mask.sum(1).tolist() == [3 + 2 * 2, 5 + 3 * 2]
    # entity projection starts at zero; the first token stays first (soft_token_offset 1)
    assert torch.equal(out[1, :1], embeds[1, :1]) and torch.equal(out[1, 7:], embeds[1, 1:])
    layer.save_pretrained(tmp_path)
    again = KnowledgeInjection.from_pretrained(tmp_path)
    assert again.config == config
    assert torch.equal(again(embeds, mask, evidence)[0], out)
    # a layer written before the offset existed (format 1) keeps its soft tokens first
    record = json.loads((tmp_path / "injection.json").read_text())
    del record["soft_token_offset"]
    record["format_version"] = 1
    (tmp_path / "injection.json").write_text(json.dumps(record))
    old = KnowledgeInjection.from_pretrained(tmp_path)
    assert old.config.soft_token_offset == 0
    assert torch.equal(old(embeds, mask, evidence)[0][1, 6:], embeds[1])


# -- every injection mode (tests/cases.py) ---------------------------------------------------


class TestTextInjection(cases.InjectionCase):
    name = "text"
    soft_tokens = 0  # evidence goes into the prompt text, not the embeddings


class TestEmbeddingInjection(cases.InjectionCase):
    name = "embedding"
    soft_tokens = 2
    settings: ClassVar = {"entity_vectors": True}  # every parameter the mode can have

    def test_needs_evidence_vectors(self):
        embeds, mask, evidence = self.inputs()
        with pytest.raises(ValueError, match="needs evidence vectors"):
            self.layer()(embeds, mask, None)
        evidence.entity_vectors = None
        with pytest.raises(ValueError, match="link_mentions=True"):
            self.layer()(embeds, mask, evidence)


class TestInjectionCoverage(cases.MetaTestCase):
    base = cases.InjectionCase

    def registered(self):
        return INJECTIONS.names()


# -- through real causal LMs ---------------------------------------------------------------


@pytest.mark.parametrize("arch", ["tiny_base", "tiny_gpt2_base"])
def test_shared_prefix_scores_equal_the_flat_path(arch, request, tiny_kb, tiny_examples):
    """One prompt pass + KV cache gives the same log-probabilities as prompt+answer rows."""
    model, batcher = cases.grounding_model(request.getfixturevalue(arch), tiny_kb)
    batch, _ = cases.batch_of(batcher, tiny_examples)
    assert batch["answer_ids"].shape[0] > len(tiny_examples)  # negatives add rows
    model.eval()
    shared = model(**batch)  # (R, A)
    model.shared_prefix = False
    flat = model(**batch)
    assert shared.shape == batch["answer_ids"].shape
    assert torch.equal(shared == 0, batch["answer_mask"] == 0)
    assert torch.allclose(shared, flat, atol=1e-4), (shared - flat).abs().max()


@pytest.mark.parametrize("arch", ["tiny_base", "tiny_gpt2_base"])
def test_training_step_through_peft_changes_adapter_and_injection(
    arch, request, tiny_kb, tiny_examples
):
    model, batcher = cases.grounding_model(request.getfixturevalue(arch), tiny_kb)
    batch, layout = cases.batch_of(batcher, tiny_examples)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora" in n for n in params) and any(n.startswith("injection.") for n in params)
    before = {n: p.detach().clone() for n, p in params.items()}
    optimizer = torch.optim.AdamW(params.values(), lr=1e-2)
    cases.training_loss(model, batch, layout).backward()
    optimizer.step()
    changed = [n for n, p in params.items() if not torch.equal(p, before[n])]
    assert any("lora_B" in n for n in changed)
    assert any(n.startswith("injection.modes.embedding.project") for n in changed)
    frozen = [p for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)


def test_batched_generation_matches_one_by_one(tiny_base, tiny_kb, tiny_examples):
    """Left padding and soft tokens do not change greedy answers."""
    from grounded.model import generate_texts

    model, batcher = cases.grounding_model(tiny_base, tiny_kb)
    model.eval()
    batched = generate_texts(model, batcher, tiny_examples, max_new_tokens=6)
    single = [generate_texts(model, batcher, [ex], max_new_tokens=6)[0] for ex in tiny_examples]
    assert batched == single


def test_cache_free_greedy_loop_matches_hf_generate(tiny_base, tiny_kb, tiny_examples):
    """The loop prefix/prompt tuning use agrees with ``lm.generate(inputs_embeds=...)``."""
    model, batcher = cases.grounding_model(tiny_base, tiny_kb)
    model.eval()
    prompts = batcher.encode_prompts(tiny_examples)
    tok = batcher.tokenizer
    kwargs = {
        "max_new_tokens": 5,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    with torch.no_grad():
        hf = model.generate(**prompts, **kwargs)
        model.prompt_learning = True
        loop = model.generate(**prompts, **kwargs)
    assert hf == loop


def test_entity_vectors_land_on_the_mention_tokens(tiny_base, tiny_kb, tiny_examples):
    model, batcher = cases.grounding_model(tiny_base, tiny_kb, entity_vectors=True)
    ex = next(e for e in tiny_examples if e["mention_starts"])
    batch = batcher.encode_prompts([ex])
    mask = batch["entity_token_mask"][0, 0]  # (T,)
    ids = batch["prompt_ids"][0][mask.bool()].tolist()
    surface = ex["prompt"][ex["mention_starts"][0] : ex["mention_ends"][0]]
    assert surface.strip() in batcher.tokenizer.decode(ids)
    assert batch["entity_vectors"].shape == (1, max(1, len(ex["mention_starts"])), 384)
    assert float(batch["entity_vectors"][0, 0].norm()) == pytest.approx(1.0, rel=1e-4)
    embeds, mask = model.embed_prompts(**batch)
    k = len(ex["evidence_ids"])
    assert (
        embeds.shape[1] == batch["prompt_ids"].shape[1] + k
        and int(mask.sum()) == int(batch["prompt_mask"].sum()) + k
    )
