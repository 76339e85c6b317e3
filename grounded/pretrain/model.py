"""The base model: a small Llama built from a :class:`PretrainConfig`, and its packed data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from grounded.pretrain.config import PretrainConfig

if TYPE_CHECKING:
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

IGNORE_INDEX = -100  # label of padding: no loss


def llama_config(config: PretrainConfig, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """The ``LlamaConfig`` of ``config``'s model sizes and ``tokenizer``'s vocabulary.

    Input and output embeddings are tied: at this size the output matrix would otherwise be
    a third of the parameters, and tying costs nothing in quality here.
    """
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )


def build_model(config: PretrainConfig, tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    """A freshly initialized ``LlamaForCausalLM``; the same ``config.seed`` gives the same weights.

    Example:
        >>> from grounded.pretrain import PretrainConfig, train_tokenizer
        >>> tok = train_tokenizer(["Mongolia", " Mongolia"], 300)
        >>> model = build_model(PretrainConfig.from_preset("quick"), tok)
        >>> model.config.hidden_size
        64
    """
    from transformers import LlamaForCausalLM, set_seed

    set_seed(config.seed)
    model = LlamaForCausalLM(llama_config(config, tokenizer))
    gen = model.generation_config
    gen.bos_token_id = tokenizer.bos_token_id
    gen.eos_token_id = tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    return model


def pack_documents(
    documents: Sequence[Sequence[int]],
    block_size: int,
    pad_id: int,
    *,
    label_starts: Sequence[int] | None = None,
) -> list[dict[str, list[int]]]:
    """Pack token sequences into blocks of exactly ``block_size`` tokens, never splitting one.

    Documents are laid end to end in order; one that does not fit in what is left of a block
    starts the next block, and the rest of the block is padding (``attention_mask`` 0,
    ``labels`` :data:`IGNORE_INDEX`). Only a document longer than ``block_size`` is cut into
    pieces. Why not split freely (the usual packing): a question cut from its answer teaches
    nothing; why not one document per row: the documents are ~20 tokens, so padding each to
    the longest would waste most of the compute.

    ``label_starts`` (one per document): tokens before this index of a document get no loss
    (label :data:`IGNORE_INDEX`), e.g. to train on the answer only; default: every token.

    Returns:
        One dict per block with ``input_ids``, ``attention_mask`` and ``labels`` (lists of
        ``block_size`` ints).

    Raises:
        ValueError: ``block_size`` < 1.

    Example:
        >>> blocks = pack_documents([[1, 5, 2], [1, 6, 2], [1, 7, 7, 2]], 6, pad_id=0)
        >>> [b["input_ids"] for b in blocks]
        [[1, 5, 2, 1, 6, 2], [1, 7, 7, 2, 0, 0]]
        >>> blocks[1]["labels"]
        [1, 7, 7, 2, -100, -100]
        >>> pack_documents([[1, 5, 2], [1, 6, 2]], 6, 0, label_starts=[2, 1])[0]["labels"]
        [-100, -100, 2, -100, 6, 2]
    """
    if block_size < 1:
        raise ValueError(f"`block_size` must be >= 1, got {block_size}")
    if label_starts is not None and len(label_starts) != len(documents):
        raise ValueError(
            f"`label_starts` has {len(label_starts)} entries for {len(documents)} documents"
        )
    rows: list[tuple[list[int], list[int]]] = []
    ids: list[int] = []
    labels: list[int] = []
    for d, doc in enumerate(documents):
        start = label_starts[d] if label_starts is not None else 0
        doc_labels = [IGNORE_INDEX] * min(start, len(doc)) + list(doc[start:])
        for i in range(0, len(doc), block_size):
            piece = list(doc[i : i + block_size])
            if ids and len(ids) + len(piece) > block_size:
                rows.append((ids, labels))
                ids, labels = [], []
            ids.extend(piece)
            labels.extend(doc_labels[i : i + block_size])
    if ids:
        rows.append((ids, labels))
    blocks = []
    for row, row_labels in rows:
        n_pad = block_size - len(row)
        blocks.append(
            {
                "input_ids": row + [pad_id] * n_pad,
                "attention_mask": [1] * len(row) + [0] * n_pad,
                "labels": row_labels + [IGNORE_INDEX] * n_pad,
            }
        )
    return blocks
