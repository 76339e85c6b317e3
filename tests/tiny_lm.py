"""Tiny causal LMs built in the tests (no pretraining, no hub): a Llama and a GPT-2.

The tokenizer is a byte-level BPE trained on the tiny KB's sentences and questions, so
prompts tokenize into few tokens and the models run in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

from grounded.answers import ABSTAIN
from grounded.data.prompts import format_prompt


def kb_texts(kb) -> list[str]:
    """Sentences a tokenizer for ``kb`` should know: facts, questions, the prompt frame."""
    graph = kb.graph
    texts = [graph.verbalize(t) for t in graph.triples()]
    for rel in graph.schema:
        for s in sorted({t.subject for t in graph.facts(relation=rel.name)}):
            texts.extend(format_prompt(q.format(subject=s), texts[:2]) for q in rel.questions)
    texts += [ABSTAIN, " Ulaanbaatar. Beijing. Moscow. I don't know."]
    return texts * 3


def make_tokenizer(texts: list[str], vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<pad>", "<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def save_tiny_base(out: Path, kb, arch: str = "llama", seed: int = 0) -> Path:
    """Write a tiny randomly initialised causal LM + tokenizer for ``kb`` to ``out``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = make_tokenizer(kb_texts(kb))
    # A large init range: with the default 0.02 the frozen lm_head of a 32-wide model caps
    # logits near 0.6, and no adapter can bring the loss far below log(vocab).
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
           "pad_token_id": tok.pad_token_id, "initializer_range": 0.4}  # fmt: skip
    torch.manual_seed(seed)
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, **ids,
        )  # fmt: skip
        model = LlamaForCausalLM(config)
    elif arch == "gpt2":
        config = GPT2Config(
            vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=512, **ids
        )
        model = GPT2LMHeadModel(config)
    else:
        raise ValueError(f"`arch` must be llama or gpt2, got {arch!r}")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
