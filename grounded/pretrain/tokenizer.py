"""A byte-level BPE tokenizer trained on the KB's names and templates (the `tokenizers` library)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)  # ids 0, 1, 2


def train_tokenizer(
    texts: Sequence[str], vocab_size: int, *, model_max_length: int = 512
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Byte-level: every string tokenizes, whatever its script, so an entity the tokenizer
    never saw still gets a sensible split. Encoding prepends ``<s>`` (as Llama tokenizers
    do); ``</s>`` ends a document and is appended by the caller; ``<pad>`` pads.

    Args:
        texts: training texts (see :func:`grounded.pretrain.corpus.tokenizer_texts`).
        vocab_size: target vocabulary size, special tokens included; the result is smaller
            when ``texts`` do not have enough distinct pieces to merge.
        model_max_length: the longest input the model takes.

    Raises:
        ValueError: ``texts`` is empty or ``vocab_size`` is below 300.

    Example:
        >>> tok = train_tokenizer(["Mongolia", " Mongolia", "Ulaanbaatar"], 300)
        >>> tok.decode(tok("Mongolia")["input_ids"], skip_special_tokens=True)
        'Mongolia'
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("`texts` is empty; the tokenizer needs text to learn merges from")
    if vocab_size < 300:
        raise ValueError(
            f"`vocab_size` must be at least 300 (256 bytes + specials), got {vocab_size}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    bos_id = tok.token_to_id(BOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, bos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
    )
