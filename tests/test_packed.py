"""`greedy_packed`: prefill groups worked out by hand, and the same greedy tokens as
``GroundingModel.generate`` on a tiny Llama with LoRA and soft evidence tokens, while rows of
unequal prompt lengths are prefilled in groups and stopped rows leave the decode."""

from __future__ import annotations

import pytest
import torch

from grounded.model.packed import PackingUnsupported, RoomyLayer, greedy_packed, prefill_groups

pytestmark = pytest.mark.usefixtures("one_thread")


# -- prefill groups ------------------------------------------------------------------------------
def test_prefill_groups_by_hand():
    lengths = [30, 10, 12, 29, 11]
    # sorted: 10 (row 1), 11 (4), 12 (2), 29 (3), 30 (0)
    # {10, 11}: padding 1 - 21/22 = 0.045; + 12: 1 - 33/36 = 0.083 <= 0.1
    # + 29: 1 - 62/116 = 0.47 > 0.1, a new group; {29, 30}: 1 - 59/60 = 0.017
    assert prefill_groups(lengths, 0.1) == [[1, 4, 2], [3, 0]]
    # 0.05 stops before 12 (0.083)
    assert prefill_groups(lengths, 0.05) == [[1, 4], [2], [3, 0]]
    assert prefill_groups(lengths, 0.0) == [[1], [4], [2], [3], [0]]
    assert prefill_groups([7, 7, 3], 0.0) == [[2], [0, 1]]
    assert prefill_groups(lengths, 1.0) == [[1, 4, 2, 3, 0]]
    assert prefill_groups([], 0.1) == []
    with pytest.raises(ValueError, match="`max_padding` must be in"):
        prefill_groups(lengths, 1.5)


# -- the cache layer -----------------------------------------------------------------------------
def test_roomy_layer_writes_in_place_then_grows_and_selects_rows():
    from transformers.cache_utils import DynamicLayer

    torch.manual_seed(0)
    k, v = torch.randn(3, 2, 4, 5), torch.randn(3, 2, 4, 5)
    roomy, plain = RoomyLayer(k, v, room=1), DynamicLayer()
    plain.update(k, v)
    buffer = roomy.buf_k
    for _ in range(3):  # one step fits the room, two more grow past it
        nk, nv = torch.randn(3, 2, 1, 5), torch.randn(3, 2, 1, 5)
        got, want = roomy.update(nk, nv), plain.update(nk, nv)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        if roomy.get_seq_length() == 5:
            assert roomy.buf_k is buffer  # written in place, not reallocated
    assert roomy.get_seq_length() == plain.get_seq_length() == 7
    keep = torch.tensor([2, 0])
    roomy.batch_select_indices(keep)
    plain.batch_select_indices(keep)
    assert torch.equal(roomy.keys, plain.keys) and torch.equal(roomy.values, plain.values)


# -- against generate ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tiny_base, tiny_kb):
    """(model, batcher, inputs): a tiny Llama + LoRA behind text and embedding injection, and
    eight left-padded prompts of unequal lengths with their evidence vectors."""
    from peft import LoraConfig, get_peft_model

    from grounded.data import build_examples, build_groups
    from grounded.injection import InjectionConfig, get_injection
    from grounded.model.artifacts import load_base
    from grounded.model.batch import Batcher
    from grounded.model.grounding import GroundingModel

    tokenizer, lm = load_base(tiny_base)
    torch.manual_seed(0)
    injection = get_injection(
        InjectionConfig(modes=["text", "embedding"], evidence_dim=384, hidden_size=8), lm
    )
    lm = get_peft_model(
        lm, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    model = GroundingModel(lm, injection).eval()
    groups = build_groups(tiny_kb, None, out_of_kb=4)
    rows = [dict(r) for r in build_examples(tiny_kb, groups.seen, p_no_gold=0.3)][:8]
    batcher = Batcher(tokenizer, tiny_kb, reads_vectors=True)
    inputs = batcher.encode_prompts(rows)
    return model, batcher, inputs


def generate(model, inputs, max_new_tokens, stops):
    rest = dict(inputs)
    ids, mask = rest.pop("prompt_ids"), rest.pop("prompt_mask")
    return model.generate(
        ids, mask, max_new_tokens=max_new_tokens, eos_token_id=stops, pad_token_id=0, **rest
    )


def packed(model, inputs, max_new_tokens, stops, max_padding):
    rest = dict(inputs)
    ids, mask = rest.pop("prompt_ids"), rest.pop("prompt_mask")
    return greedy_packed(
        model, ids, mask, max_new_tokens=max_new_tokens, eos_token_id=stops,
        max_padding=max_padding, **rest,
    )  # fmt: skip


def decode_rows(model, fn):
    """fn()'s result and the rows of each forward of the LM (prefills, then decode steps)."""
    seen: list[tuple[int, int]] = []
    base = model.lm.get_base_model()
    hook = base.register_forward_hook(
        lambda m, a, kw, out: seen.append(tuple(kw["inputs_embeds"].shape[:2])), with_kwargs=True
    )
    try:
        return fn(), seen
    finally:
        hook.remove()


@pytest.mark.parametrize("max_padding", [0.0, 0.1, 1.0])
def test_packed_gives_generate_s_tokens_and_stopped_rows_leave(tiny, max_padding):
    model, batcher, inputs = tiny
    lengths = inputs["prompt_mask"].sum(1).tolist()
    assert len(set(lengths)) > 2, lengths  # unequal prompts, so groups and padding differ
    eos = batcher.stop_ids
    first = generate(model, inputs, 12, eos)
    # a stop token the tiny model does emit, so rows end at different steps
    stop = next(seq[2] for seq in first if len(seq) > 2)
    stops = [*eos, stop]
    want = generate(model, inputs, 12, stops)
    assert len({len(w) for w in want}) > 1, want
    got, calls = decode_rows(model, lambda: packed(model, inputs, 12, stops, max_padding))
    assert got == want
    prefills = [c for c in calls if c[1] > 1]
    steps = [c[0] for c in calls if c[1] == 1]
    assert sum(c[0] for c in prefills) == len(lengths)
    if max_padding == 0.0:  # one group per distinct length (soft tokens add the same to all)
        assert len(prefills) == len(set(lengths))
    if max_padding == 1.0:
        assert len(prefills) == 1
    assert steps == sorted(steps, reverse=True)  # rows only leave
    assert steps[-1] == sum(len(w) == max(len(x) for x in want) for w in want)


def test_each_row_stops_at_its_own_max_new_tokens(tiny):
    model, batcher, inputs = tiny
    n = inputs["prompt_ids"].shape[0]
    caps = [1, 12, 3, 12, 5, 2, 12, 7][:n]
    full = generate(model, inputs, 12, batcher.stop_ids)
    want = [seq[:c] for seq, c in zip(full, caps, strict=True)]
    got = packed(model, inputs, caps, batcher.stop_ids, 0.1)
    assert got == want
    with pytest.raises(ValueError, match="`max_new_tokens` has 2 values for"):
        packed(model, inputs, [1, 2], batcher.stop_ids, 0.1)
    with pytest.raises(ValueError, match="`max_new_tokens` must be >= 1, got 0"):
        packed(model, inputs, 0, batcher.stop_ids, 0.1)
    empty = {k: v[:0] for k, v in inputs.items()}
    assert packed(model, empty, 4, batcher.stop_ids, 0.1) == []


def test_generate_texts_packed_equals_padded_with_caps_per_row(tiny):
    from grounded.data import build_examples, build_groups
    from grounded.model.generate import generate_texts

    model, batcher, _ = tiny
    groups = build_groups(batcher.kb, None, out_of_kb=4)
    rows = [dict(r) for r in build_examples(batcher.kb, groups.seen, p_no_gold=0.3)][:6]
    caps = [4, 9, 1, 9, 6, 2]
    padded = generate_texts(model, batcher, rows, max_new_tokens=caps, batch_size=4)
    assert (
        generate_texts(model, batcher, rows, max_new_tokens=caps, batch_size=4, packed=0.1)
        == padded
    )
    alone = [
        generate_texts(model, batcher, [r], max_new_tokens=c)[0]
        for r, c in zip(rows, caps, strict=True)
    ]
    assert padded == alone
    with pytest.raises(ValueError, match="`max_new_tokens` has 1 values for 6 examples"):
        generate_texts(model, batcher, rows, max_new_tokens=[3])


def test_a_sliding_window_cache_falls_back_to_generate(tiny_kb):
    """Gemma 2's sliding-window layers are not joined: greedy_packed says so, and
    generate_texts answers through ``generate`` instead."""
    import transformers
    from tiny_lm import kb_texts, make_tokenizer

    from grounded.data import build_examples, build_groups
    from grounded.injection import InjectionConfig, get_injection
    from grounded.model.batch import Batcher
    from grounded.model.generate import generate_texts
    from grounded.model.grounding import GroundingModel

    tok = make_tokenizer(kb_texts(tiny_kb))
    config = transformers.Gemma2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=4,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, initializer_range=0.4,
    )  # fmt: skip
    torch.manual_seed(0)
    lm = transformers.AutoModelForCausalLM.from_config(config)
    model = GroundingModel(lm, get_injection(InjectionConfig(modes=["text"]), lm)).eval()
    batcher = Batcher(tok, tiny_kb)
    groups = build_groups(tiny_kb, None, out_of_kb=4)
    rows = [dict(r) for r in build_examples(tiny_kb, groups.seen, p_no_gold=0.3)][:3]
    inputs = batcher.encode_prompts(rows)
    with pytest.raises(PackingUnsupported, match="DynamicSlidingWindowLayer"):
        packed(model, inputs, 4, batcher.stop_ids, 0.1)
    want = generate_texts(model, batcher, rows, max_new_tokens=4)
    assert generate_texts(model, batcher, rows, max_new_tokens=4, packed=0.1) == want
