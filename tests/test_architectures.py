"""Any Hugging Face causal LM: every adapter trains and answers on tiny random checkpoints of
Llama, GPT-2, Qwen2, GPT-NeoX, multi-query Falcon and two mixture-of-experts models (plus the
architectures PEFT has no IA3 default for), built from configs written here; nothing is
downloaded. Also: the two scoring paths agree on every architecture, chat templates, Gemma's
scaled embeddings, and the guard that fails the tests on the project's own deprecated calls.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
import transformers
from transformers import TrainerCallback

from grounded.config import update_config
from grounded.data.prompts import SYSTEM_PROMPT
from grounded.model import GroundedModel, read_grounding
from grounded.training import ADAPTERS, TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

QUESTIONS = ["What is the capital of Mongolia?", "Which languages are spoken in Atlantis?"]
_LLAMA_LIKE = {"intermediate_size": 64, "num_key_value_heads": 2, "max_position_embeddings": 256}
# Each architecture at its smallest: width 32, one layer, 4 heads (fewer KV heads where the
# family has grouped-query attention), 4 experts with 2 active for the MoE models.
ARCHITECTURES: dict[str, tuple[str, dict]] = {
    "llama": ("LlamaConfig", _LLAMA_LIKE),
    "gpt2": ("GPT2Config", {"n_embd": 32, "n_layer": 1, "n_head": 4, "n_positions": 256}),
    "qwen2": ("Qwen2Config", _LLAMA_LIKE),
    "gpt_neox": ("GPTNeoXConfig", {"intermediate_size": 64, "max_position_embeddings": 256}),
    # multi-query: 4 attention heads, one key/value head
    "falcon": ("FalconConfig", {"new_decoder_architecture": False, "multi_query": True}),
    "mixtral": ("MixtralConfig", {**_LLAMA_LIKE, "num_local_experts": 4, "num_experts_per_tok": 2}),
    "qwen2_moe": (
        "Qwen2MoeConfig",
        {
            **_LLAMA_LIKE,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 48,
            "shared_expert_intermediate_size": 48,
        },
    ),
    # PEFT has no IA3 default for these; Phi-3 fuses q, k and v into qkv_proj
    "phi3": ("Phi3Config", _LLAMA_LIKE),
    "smollm3": ("SmolLM3Config", _LLAMA_LIKE),
    "olmo2": ("Olmo2Config", _LLAMA_LIKE),
    "stablelm": ("StableLmConfig", _LLAMA_LIKE),
    "granite": ("GraniteConfig", _LLAMA_LIKE),
    # scales its embeddings by sqrt(d) inside the embedding module
    "gemma": ("GemmaConfig", {**_LLAMA_LIKE, "head_dim": 8}),
}
REQUIRED = ("llama", "gpt2", "qwen2", "gpt_neox", "falcon", "mixtral")
ADAPTER_NAMES = ("lora", "prefix", "prompt", "ia3")


def _case(arch: str, adapter: str) -> pytest.param:
    # The required architectures run every adapter by default; the others run IA3 (the
    # adapter their PEFT defaults lack) by default and the rest under `-m slow`.
    slow = arch not in REQUIRED and adapter != "ia3" and arch != "qwen2_moe"
    return pytest.param(arch, adapter, id=f"{arch}-{adapter}", marks=[pytest.mark.slow] * slow)


CASES = [_case(a, ad) for a in ARCHITECTURES for ad in ADAPTER_NAMES]


def make_config(arch: str, tokenizer) -> transformers.PretrainedConfig:
    """The tiny random config of ``arch`` for ``tokenizer`` (its special tokens, its size)."""
    cls, extra = ARCHITECTURES[arch]
    common = {} if arch == "gpt2" else {"hidden_size": 32, "num_attention_heads": 4}
    layers = {"gpt2": {}}.get(arch, {"num_hidden_layers": 1})
    return getattr(transformers, cls)(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        # as tests/tiny_lm.py: a frozen 32-wide head with the default 0.02 init caps logits
        initializer_range=0.4, **common, **layers, **extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer(tiny_kb):
    from tiny_lm import kb_texts, make_tokenizer

    return make_tokenizer(kb_texts(tiny_kb))


@pytest.fixture(scope="module")
def bases(tmp_path_factory, tokenizer):
    """arch → a folder with its tiny random checkpoint and the tiny BPE tokenizer (lazily)."""
    root = tmp_path_factory.mktemp("architectures")
    made: dict = {}

    def get(arch: str):
        if arch not in made:
            torch.manual_seed(0)
            lm = transformers.AutoModelForCausalLM.from_config(make_config(arch, tokenizer))
            made[arch] = root / arch
            lm.save_pretrained(made[arch])
            tokenizer.save_pretrained(made[arch])
        return made[arch]

    return get


@pytest.fixture(scope="module")
def probe_examples(tiny_kb):
    """A fixed batch of training-like examples: the loss before and after is measured on it."""
    from grounded.data import build_examples, build_groups

    groups = build_groups(tiny_kb, None, out_of_kb=4)
    return [dict(r) for r in build_examples(tiny_kb, groups.seen, n_negatives=0)][:8]


def probe_loss(model, batcher, examples) -> float:
    """Mean per-token negative log-likelihood of the gold answers of ``examples`` (eval mode)."""
    was_training = model.training
    model.eval()
    batch = batcher(examples, with_negatives=False)
    for key in ("gold_rows", "neg_rows", "is_feedback"):
        batch.pop(key)
    with torch.no_grad():
        logp = model(**batch)  # (R, A)
    model.train(was_training)
    return float(-logp.sum() / batch["answer_mask"].sum())


class Before(TrainerCallback):
    """The trainable parameters and the probe loss when training begins."""

    def __init__(self, probe) -> None:
        self.probe = probe

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.params = {
            n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
        }
        self.loss = self.probe(model)


def test_every_adapter_is_in_the_matrix():
    assert set(ADAPTER_NAMES) == set(ADAPTERS.names())
    assert set(REQUIRED) <= set(ARCHITECTURES)


@pytest.mark.parametrize(("arch", "adapter"), CASES)
def test_train_and_generate(arch, adapter, bases, tiny_kb, tmp_path, probe_examples, caplog):
    from grounded.model.batch import Batcher

    base = bases(arch)
    config = update_config(TrainConfig(), dict(
        adapter=adapter, max_steps=6, batch_size=4, learning_rate=2e-2, injection_hidden=16,
        feedback_every=0, logging_steps=1, save_steps=1000, out_of_kb=4, max_new_tokens=4,
        num_virtual_tokens=4,
        # the examples the probe loss reads, only: 6 steps of a mix with other targets
        # (counterfactual, out-of-KB, closed-book) need not lower it on every adapter
        p_counterfactual=0.0, out_of_kb_examples=0.0, p_closed_book=0.0,
    ))  # fmt: skip
    batcher = Batcher(transformers.AutoTokenizer.from_pretrained(base), tiny_kb, reads_vectors=True)

    def probe(model):
        return probe_loss(model, batcher, probe_examples)

    before = Before(probe)
    with caplog.at_level(logging.WARNING, logger="grounded"):
        result = train(
            tiny_kb, base, tmp_path / "m", config, callbacks=[before], show_progress=False
        )
    assert result.steps == 6

    after = dict(result.model.named_parameters())
    changed = {n for n, p in before.params.items() if not torch.equal(p, after[n].detach())}
    adapter_names = {n for n in before.params if not n.startswith("injection.")}
    assert adapter_names and adapter_names & changed, sorted(before.params)
    assert any(n.startswith("injection.modes.embedding") for n in changed)
    markers = ("lora_", "prompt_encoder", "ia3_", "injection.")
    assert all(any(m in n for m in markers) for n in before.params), sorted(before.params)

    lm = [e["loss_lm"] for e in result.log_history if "loss_lm" in e]
    assert len(lm) == 6 and all(math.isfinite(x) for x in lm), lm
    loss_after = probe(result.model)
    assert math.isfinite(before.loss) and loss_after < before.loss, (before.loss, loss_after)

    grounding = read_grounding(result.out)
    in_memory = GroundedModel(result.model, result.tokenizer, tiny_kb, grounding)
    answers = [a.text for a in in_memory.answer(QUESTIONS, max_new_tokens=4)]
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    if arch in ("falcon", "mixtral") or (adapter == "ia3" and arch not in REQUIRED):
        # the adapters sized or placed from the model reload as they were trained
        reloaded = GroundedModel.from_pretrained(result.out, tiny_kb)
        assert [a.text for a in reloaded.answer(QUESTIONS, max_new_tokens=4)] == answers

    peft_config = result.model.lm.peft_config["default"]
    if arch == "falcon" and adapter == "prefix":
        assert (peft_config.num_attention_heads, peft_config.token_dim) == (1, 8)
    if arch == "mixtral" and adapter == "lora":
        assert peft_config.lora_dropout == 0.0 and peft_config.target_parameters
        assert "`lora_dropout` set from 0.05 to 0" in caplog.text
    if adapter == "ia3" and arch not in REQUIRED and arch != "gemma":
        assert "no default IA3 targets" in caplog.text


def test_ia3_targets_come_from_the_models_own_layers(bases):
    import re

    from grounded.training.adapters import derive_ia3_targets

    phi3 = transformers.AutoModelForCausalLM.from_pretrained(bases("phi3"))
    targets, feedforward = derive_ia3_targets(phi3)
    names = [n for n, _ in phi3.named_modules()]
    hit = sorted(n for n in names if re.fullmatch(targets, n))
    assert hit == ["model.layers.0.mlp.down_proj", "model.layers.0.self_attn.qkv_proj"]
    assert [n for n in names if re.fullmatch(feedforward, n)] == ["model.layers.0.mlp.down_proj"]

    gpt2 = transformers.AutoModelForCausalLM.from_pretrained(bases("gpt2"))
    targets, feedforward = derive_ia3_targets(gpt2)
    hit = sorted(n for n, _ in gpt2.named_modules() if re.fullmatch(targets, n))
    # the attention's output projection is also called c_proj: only the MLP's is feed-forward
    assert hit == ["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_proj"]

    moe = transformers.AutoModelForCausalLM.from_pretrained(bases("qwen2_moe"))
    targets, feedforward = derive_ia3_targets(moe)
    hit = sorted(n for n, _ in moe.named_modules() if re.fullmatch(targets, n))
    assert hit == [
        "model.layers.0.mlp.shared_expert.down_proj",
        "model.layers.0.self_attn.k_proj",
        "model.layers.0.self_attn.v_proj",
    ]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_prefix_goes_in_as_cache_with_peft_s_own_result(arch, bases):
    """Prefix tuning passes its prefix as `cache` (transformers removes `past_key_values` in
    5.40) and computes what PEFT's own forward does."""
    import warnings

    from grounded.injection import InjectionConfig
    from grounded.injection.layer import get_injection
    from grounded.model.grounding import GroundingModel
    from grounded.training.adapters import AdapterConfig, get_adapter_model

    torch.manual_seed(0)
    lm = transformers.AutoModelForCausalLM.from_pretrained(bases(arch))
    peft_lm = get_adapter_model(lm, AdapterConfig(name="prefix", num_virtual_tokens=3))
    with torch.no_grad():
        for p in peft_lm.parameters():
            if p.requires_grad:
                p.normal_(0, 1.0)  # a prefix that changes the output
    model = GroundingModel(peft_lm, get_injection(InjectionConfig(modes=["text"]), lm))
    assert model._own_prefix
    embeds = lm.get_input_embeddings()(torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10]]))
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated argument on our path
        ours = model._lm(embeds, mask).logits
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        theirs = peft_lm(inputs_embeds=embeds, attention_mask=mask).logits
        plain = lm(inputs_embeds=embeds, attention_mask=mask).logits
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours[:, -4:], plain, atol=1e-3)  # the prefix is in


def test_prefix_is_sized_by_the_heads_the_cache_holds(bases):
    from grounded.training.adapters import kv_shape

    shapes = {}
    for arch in ("falcon", "llama", "gpt2"):
        lm = transformers.AutoModelForCausalLM.from_pretrained(bases(arch))
        shapes[arch] = kv_shape(lm)
    assert shapes == {"falcon": (1, 8), "llama": (2, 8), "gpt2": (4, 8)}


@pytest.mark.parametrize("arch", REQUIRED)
def test_shared_prefix_scores_equal_the_flat_path(arch, bases, tiny_kb, probe_examples):
    """The KV-cache path and the one-sequence path give the same log-probabilities on a bare
    model; the cache goes in by its current name (the conftest guard fails a deprecated one)."""
    from grounded.injection import InjectionConfig, get_injection
    from grounded.model.artifacts import load_base
    from grounded.model.batch import Batcher
    from grounded.model.grounding import GroundingModel

    tokenizer, lm = load_base(bases(arch))
    torch.manual_seed(0)
    injection = get_injection(
        InjectionConfig(modes=["text", "embedding"], evidence_dim=384, hidden_size=8), lm
    )
    model = GroundingModel(lm, injection).eval()
    batch = Batcher(tokenizer, tiny_kb, reads_vectors=True, n_negatives=2)(probe_examples[:4])
    for key in ("gold_rows", "neg_rows", "is_feedback"):
        batch.pop(key)
    with torch.no_grad():
        shared = model(**batch)
        model.shared_prefix = False
        flat = model(**batch)
    assert torch.allclose(shared, flat, atol=1e-5), (shared - flat).abs().max()


@pytest.mark.parametrize("arch", REQUIRED)
def test_packed_generation_equals_generate(arch, bases, tiny_kb, probe_examples):
    """The server's packed generation (prefill groups, joined caches, rows leaving) gives
    ``generate``'s greedy tokens on every architecture, soft evidence tokens included."""
    from grounded.injection import InjectionConfig, get_injection
    from grounded.model.artifacts import load_base
    from grounded.model.batch import Batcher
    from grounded.model.grounding import GroundingModel
    from grounded.model.packed import greedy_packed

    tokenizer, lm = load_base(bases(arch))
    torch.manual_seed(0)
    injection = get_injection(
        InjectionConfig(modes=["text", "embedding"], evidence_dim=384, hidden_size=8), lm
    )
    model = GroundingModel(lm, injection).eval()
    batcher = Batcher(tokenizer, tiny_kb, reads_vectors=True)
    inputs = batcher.encode_prompts(probe_examples)
    ids, mask = inputs.pop("prompt_ids"), inputs.pop("prompt_mask")
    assert len(set(mask.sum(1).tolist())) > 2
    first = model.generate(ids, mask, max_new_tokens=8, eos_token_id=batcher.stop_ids,
                           pad_token_id=tokenizer.pad_token_id, **inputs)  # fmt: skip
    # a token the model does emit stops some rows early, so rows leave at different steps
    stops = [*batcher.stop_ids, next(seq[1] for seq in first if len(seq) > 1)]
    want = model.generate(ids, mask, max_new_tokens=8, eos_token_id=stops,
                          pad_token_id=tokenizer.pad_token_id, **inputs)  # fmt: skip
    got = greedy_packed(model, ids, mask, max_new_tokens=8, eos_token_id=stops,
                        max_padding=0.05, **inputs)  # fmt: skip
    assert got == want


def test_gemma_soft_tokens_start_at_the_scale_of_real_tokens(bases):
    from grounded.injection import InjectionConfig, get_injection

    lm = transformers.AutoModelForCausalLM.from_pretrained(bases("gemma"))
    embed = lm.get_input_embeddings()
    with torch.no_grad():
        real_rms = float(embed(torch.arange(embed.weight.shape[0])).pow(2).mean().sqrt())
        weight_rms = float(embed.weight.pow(2).mean().sqrt())
    assert real_rms == pytest.approx(weight_rms * math.sqrt(32), rel=1e-4)  # Gemma's sqrt(d)
    injection = get_injection(InjectionConfig(modes=["embedding"], evidence_dim=6), lm)
    assert injection.config.init_scale == pytest.approx(real_rms, rel=0.02)
    soft = injection.modes["embedding"].soft_tokens(torch.randn(3, 2, 6))  # (3, 2, 32)
    assert float(soft.pow(2).mean().sqrt()) == pytest.approx(real_rms, rel=0.02)


# -- chat templates ----------------------------------------------------------------------------
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def chat_base(tmp_path_factory, tiny_kb):
    """A tiny Qwen2 whose tokenizer has a ChatML template (an instruct model's shape)."""
    from tiny_lm import kb_texts, make_tokenizer

    tok = make_tokenizer(kb_texts(tiny_kb))
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    torch.manual_seed(0)
    lm = transformers.AutoModelForCausalLM.from_config(make_config("qwen2", tok))
    out = tmp_path_factory.mktemp("chat") / "qwen2-chat"
    lm.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_chat_frame_cuts_the_template_around_the_turns(chat_base):
    from grounded.data.prompts import ChatFrame, format_prompt, resolve_prompt_format

    tok = transformers.AutoTokenizer.from_pretrained(chat_base)
    frame = ChatFrame.from_tokenizer(tok)
    assert (frame.head, frame.middle, frame.end) == (
        "<|im_start|>user\n",
        "<|im_end|>\n<|im_start|>assistant\n",
        "<|im_end|>\n",
    )
    prompt = format_prompt("Where is Chad?", ["Chad is in Africa."])
    assert frame.prompt(prompt) == tok.apply_chat_template(
        [{"role": "user", "content": "Evidence:\n- Chad is in Africa.\nQuestion: Where is Chad?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert resolve_prompt_format("auto", tok) == "chat"
    tok.chat_template = None
    assert resolve_prompt_format("auto", tok) == "plain"
    with pytest.raises(ValueError, match="no chat template; use `plain`"):
        resolve_prompt_format("chat", tok)
    tok.chat_template = "{{ messages[0]['content'] | upper }}"  # rewrites the text
    with pytest.raises(ValueError, match="does not reproduce the turns' text"):
        ChatFrame.from_tokenizer(tok)


def test_chat_template_is_used_in_training_and_generation(chat_base, tiny_kb, tmp_path):
    config = update_config(TrainConfig(), dict(
        max_steps=8, batch_size=4, learning_rate=2e-2, injection_hidden=16, feedback_every=0,
        logging_steps=1, save_steps=1000, out_of_kb=4, max_new_tokens=4, entity_vectors=True,
    ))  # fmt: skip
    result = train(tiny_kb, chat_base, tmp_path / "chat", config, show_progress=False)
    grounding = read_grounding(result.out)
    assert grounding["settings"]["data"]["prompt_format"] == "auto"
    assert grounding["prompt_format"]["format"] == "chat"
    system = f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"  # the project's own
    assert grounding["prompt_format"]["system"] == SYSTEM_PROMPT
    assert grounding["prompt_format"]["template"] == system + (
        "<|im_start|>user\nEvidence:\n- {fact}\nQuestion: {question}<|im_end|>\n"
        "<|im_start|>assistant\n{answer}<|im_end|>\n"
    )
    reloaded = GroundedModel.from_pretrained(result.out, tiny_kb)
    batcher = reloaded.batcher
    tok = batcher.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert batcher.prompt_format == "chat" and batcher.end_id == end
    assert batcher.answer_ids("Bern.")[-1] == end
    examples, _ = reloaded.examples(QUESTIONS[:1])
    batch = batcher.encode_prompts(examples)
    text = tok.decode(batch["prompt_ids"][0])
    assert text.startswith(system + "<|im_start|>user\nEvidence:\n- ")
    assert text.endswith(
        "Question: What is the capital of Mongolia?<|im_end|>\n<|im_start|>assistant\n"
    )
    # linked mentions still land on their tokens after the template's head
    mention = batch["entity_token_mask"][0, 0].bool()
    assert tok.decode(batch["prompt_ids"][0][mention]).strip() == "Mongolia"
    in_memory = GroundedModel(result.model, result.tokenizer, tiny_kb, grounding)
    assert [a.text for a in in_memory.answer(QUESTIONS)] == [
        a.text for a in reloaded.answer(QUESTIONS)
    ]

    plain = train(
        tiny_kb, chat_base, tmp_path / "plain",
        update_config(config, {"prompt_format": "plain", "max_steps": 1}), show_progress=False,
    )  # fmt: skip
    assert read_grounding(plain.out)["prompt_format"]["format"] == "plain"
    assert read_grounding(plain.out)["prompt_format"]["system"] is None
    assert GroundedModel.from_pretrained(plain.out, tiny_kb).batcher.prompt_format == "plain"


def test_dpo_pairs_carry_the_chat_prompt_the_model_was_trained_on(chat_base, tiny_kb, tmp_path):
    import json

    from grounded.data.prompts import ChatFrame, format_prompt
    from grounded.model.batch import Batcher
    from grounded.training.feedback import FeedbackLoop, FeedbackRound

    tok = transformers.AutoTokenizer.from_pretrained(chat_base)
    batcher = Batcher(tok, tiny_kb, prompt_format="chat")
    prompt = format_prompt("What is the capital of Mongolia?", ["The capital of X is Y."])
    ex = {"prompt": prompt, "answer": "Ulaanbaatar.", "negatives": ["Beijing."]}
    loop = FeedbackLoop(
        [ex], judge=None, every=1, samples=1, batch_size=1, log_dir=tmp_path,
        render_prompt=batcher.prompt_text, answer_prefix="",
    )  # fmt: skip
    loop.write(FeedbackRound(0, 3, 1, 1, 0, 0, refuted=[ex]))
    (pair,) = [json.loads(x) for x in (tmp_path / "dpo_pairs.jsonl").read_text().splitlines()]
    frame = batcher.frame  # the frame training used (with the system prompt, where one is set)
    assert isinstance(frame, ChatFrame) and pair["prompt"] == frame.prompt(prompt)
    assert pair["prompt"].startswith(frame.head) and pair["prompt"].endswith(frame.middle)
    assert (pair["chosen"], pair["rejected"], pair["step"]) == ("Ulaanbaatar.", "Beijing.", 3)
    # plain: the prompt as written, answers after `Answer:` with their space
    plain = FeedbackLoop([ex], judge=None, every=1, samples=1, batch_size=1,
                         log_dir=tmp_path / "plain")  # fmt: skip
    plain.write(FeedbackRound(0, 3, 1, 1, 0, 0, refuted=[ex]))
    pair = json.loads((tmp_path / "plain" / "dpo_pairs.jsonl").read_text())
    assert (pair["prompt"], pair["chosen"]) == (prompt, " Ulaanbaatar.")


def test_the_closed_book_probe_reads_the_chat_prompt_of_the_base_variant(chat_base, tiny_kb):
    from grounded.data.groups import answerable_pairs
    from grounded.data.probe import model_prober
    from grounded.data.prompts import SYSTEM_PROMPT
    from grounded.model.artifacts import load_base

    tok, lm = load_base(chat_base)
    probe = model_prober(tiny_kb, lm, tok, max_pairs=3, max_new_tokens=4)(
        answerable_pairs(tiny_kb.graph)
    )
    base = GroundedModel.from_base(chat_base, tiny_kb)
    assert base.batcher.prompt_format == probe.settings["prompt_format"] == "chat"
    assert probe.settings["system_prompt"] == base.batcher.system_prompt == SYSTEM_PROMPT
    said = [a.text for a in base.answer([a[2] for a in probe.answers], max_new_tokens=4)]
    assert [a[3] for a in probe.answers] == said


# -- the project's own deprecated calls ------------------------------------------------------
def test_the_projects_own_deprecated_calls_fail_the_tests(bases):
    """A deprecated argument passed from grounded/ code fails (tests/conftest.py's guard); the
    same call from anywhere else only warns."""
    lm = transformers.AutoModelForCausalLM.from_pretrained(bases("llama"))
    ids = torch.tensor([[1, 2]])
    code = compile("lm(input_ids=ids, past_key_values=None)", "grounded/_probe.py", "exec")
    with pytest.raises(FutureWarning, match="called from the project's code at grounded/_probe"):
        exec(code, {"__name__": "grounded._probe", "lm": lm, "ids": ids})
    with pytest.warns(FutureWarning, match="`past_key_values` is deprecated"):
        lm(input_ids=ids, past_key_values=None)
