"""`Batcher`: examples (dicts) → the tensors :class:`GroundingModel` takes.

A batch holds P prompts and R ≥ P answer rows. Each prompt has one gold row and up to N
negative rows (graph-contradicted answers, or for feedback examples the model's refuted
generations); every row is teacher-forced after its prompt. Prompts are left-padded (the
answers continue them through the KV cache), answers right-padded.

The prompt format (:mod:`grounded.data.prompts`) is applied here: examples carry the plain
prompt, and with ``chat`` the batcher wraps it in the tokenizer's chat template and ends each
answer with the template's end-of-turn token instead of eos.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from grounded.data.prompts import ChatFrame

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase

ENTITY_FACTS_CAP = 64


class Batcher:
    """Tokenize prompts and answers and look up evidence vectors.

    Args:
        tokenizer: the base model's tokenizer (a pad token is required).
        kb: the knowledge base whose index holds the evidence vectors.
        reads_vectors: add evidence vectors (embedding injection).
        reads_entities: add linked-mention vectors and their token masks (ERNIE-style).
        n_negatives: negatives per example when negatives are requested.
        max_prompt_tokens: prompts are cut from the left beyond this (in the chat format,
            the template's head is kept).
        prompt_format: ``plain`` or ``chat`` (resolved: see
            :func:`~grounded.data.prompts.resolve_prompt_format`).
        system_prompt: the chat format's system turn (None or ``""``: none, the template's
            default); :attr:`system_prompt` is the one used (None where the template
            refuses a system turn).

    Raises:
        ValueError: no pad or eos token, entity vectors with a slow tokenizer, an unknown
            ``prompt_format``, or a chat template prompts cannot be built from.
    """

    def __init__(
        self,
        tokenizer: Any,
        kb: KnowledgeBase,
        *,
        reads_vectors: bool = False,
        reads_entities: bool = False,
        n_negatives: int = 3,
        max_prompt_tokens: int = 512,
        prompt_format: str = "plain",
        system_prompt: str | None = None,
    ) -> None:
        if prompt_format not in ("plain", "chat"):
            raise ValueError(
                f"`prompt_format` must be 'plain' or 'chat' here (resolve 'auto' with "
                f"`resolve_prompt_format`), got {prompt_format!r}"
            )
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError(
                "the tokenizer needs `eos_token` and `pad_token`; load it with "
                "`grounded.model.load_base`, which sets pad to eos when missing"
            )
        if reads_entities and not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                "`entity_vectors` needs a fast tokenizer (character offsets of tokens); this "
                f"base has {type(tokenizer).__name__}: turn `entity_vectors` off"
            )
        self.tokenizer = tokenizer
        self.kb = kb
        self.reads_vectors = reads_vectors
        self.reads_entities = reads_entities
        self.n_negatives = n_negatives
        self.max_prompt_tokens = max_prompt_tokens
        self._answers: dict[str, list[int]] = {}
        self._entities: dict[str, np.ndarray] = {}
        self._warned = False
        self.prompt_format = prompt_format
        self.frame = (
            ChatFrame.from_tokenizer(tokenizer, system_prompt) if prompt_format == "chat" else None
        )
        self.end_id = self._end_of_turn() if self.frame is not None else tokenizer.eos_token_id
        # Tokens of the template's head survive the cut of a long prompt.
        self._head_tokens = (
            len(tokenizer(self.frame.head, add_special_tokens=False)["input_ids"])
            if self.frame is not None
            else 0
        )

    @property
    def system_prompt(self) -> str | None:
        """The system prompt the prompts open with (None: none given; always in ``plain``)."""
        return self.frame.system if self.frame is not None else None

    def _end_of_turn(self) -> int:
        """The token that ends an answer in the chat format: the template's end-of-turn token
        when its end text starts with a special token, else eos."""
        tok = self.tokenizer
        ids = tok(self.frame.end, add_special_tokens=False)["input_ids"]  # type: ignore[union-attr]
        if ids:
            special = set(tok.all_special_ids) | set(tok.get_added_vocab().values())
            if ids[0] in special:
                return int(ids[0])
        return int(tok.eos_token_id)

    @property
    def stop_ids(self) -> list[int]:
        """Token ids that end a generated answer: the end-of-turn token (eos, in ``plain``)
        and eos."""
        return sorted({self.end_id, int(self.tokenizer.eos_token_id)})

    def prompt_text(self, example: dict) -> str:
        """The text the model reads for ``example``: its prompt in this batcher's format."""
        return example["prompt"] if self.frame is None else self.frame.prompt(example["prompt"])

    # -- prompts -----------------------------------------------------------------------------
    def encode_prompts(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """Left-padded prompt ids and mask, plus evidence tensors the injection reads.

        Returns:
            ``prompt_ids`` (P, T), ``prompt_mask`` (P, T); with vectors ``evidence_vectors``
            (P, K, E) and ``evidence_mask`` (P, K); with entities ``entity_vectors``
            (P, M, E) and ``entity_token_mask`` (P, M, T).
        """
        tok = self.tokenizer
        # Truncation and padding by hand, not the tokenizer's truncation_side/padding_side:
        # a long prompt must keep the chat template's head (its role tokens) as well as its
        # last tokens, which no tokenizer setting does, and left padding follows that cut.
        enc = tok(
            [self.prompt_text(ex) for ex in examples],
            add_special_tokens=self.frame is None,  # a chat template writes its own (bos)
            return_offsets_mapping=self.reads_entities,
        )
        keep = min(self._head_tokens, self.max_prompt_tokens)
        ids_list, offsets_list = [], []
        for i, ids in enumerate(enc["input_ids"]):
            offsets = enc["offset_mapping"][i] if self.reads_entities else None
            if ids and ids[-1] == tok.eos_token_id:  # tokenizers that append eos
                ids = ids[:-1]
                offsets = offsets[:-1] if offsets is not None else None
            if len(ids) > self.max_prompt_tokens:
                tail = self.max_prompt_tokens - keep
                if not self._warned:
                    head = f"the chat template's first {keep} and " if keep else ""
                    warnings.warn(
                        f"a prompt has {len(ids)} tokens; keeping {head}its last {tail} (raise "
                        "`max_prompt_tokens` or lower `k`)",
                        stacklevel=2,
                    )
                    self._warned = True
                ids = ids[:keep] + ids[len(ids) - tail :]
                offsets = offsets[:keep] + offsets[len(offsets) - tail :] if offsets else offsets
            ids_list.append(ids)
            offsets_list.append(offsets)
        t = max(len(ids) for ids in ids_list)
        prompt_ids = torch.full((len(ids_list), t), tok.pad_token_id, dtype=torch.long)
        prompt_mask = torch.zeros((len(ids_list), t), dtype=torch.long)
        for i, ids in enumerate(ids_list):
            if ids:
                prompt_ids[i, t - len(ids) :] = torch.tensor(ids)
                prompt_mask[i, t - len(ids) :] = 1
        out = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask}
        if self.reads_vectors:
            out.update(self._evidence(examples))
        if self.reads_entities:
            out.update(self._entities_of(examples, offsets_list, t))
        return out

    def _evidence(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        k = max(1, max(len(ex["evidence_ids"]) for ex in examples))
        all_ids = [i for ex in examples for i in ex["evidence_ids"]]
        vecs = self.kb.index.vectors(all_ids)  # (sum of K_i, E)
        out = torch.zeros(len(examples), k, vecs.shape[1])
        mask = torch.zeros(len(examples), k, dtype=torch.long)
        pos = 0
        for i, ex in enumerate(examples):
            n = len(ex["evidence_ids"])
            out[i, :n] = torch.from_numpy(vecs[pos : pos + n])
            mask[i, :n] = 1
            pos += n
        return {"evidence_vectors": out, "evidence_mask": mask}

    def entity_vector(self, entity: str) -> np.ndarray:
        """An entity's vector: the normalized mean of its facts' stored index vectors."""
        if entity not in self._entities:
            index = self.kb.index
            ids = []
            for t in self.kb.graph.facts_about(entity)[:ENTITY_FACTS_CAP]:
                try:
                    ids.append(index.id_of(t.key))
                except KeyError:
                    continue
            vec = index.vectors(ids).mean(0) if ids else np.zeros(index.dimension, np.float32)
            norm = float(np.linalg.norm(vec))
            self._entities[entity] = (vec / norm if norm > 0 else vec).astype(np.float32)
        return self._entities[entity]

    def _entities_of(
        self, examples: Sequence[dict], offsets_list: list, t: int
    ) -> dict[str, torch.Tensor]:
        shift = self.frame.offset if self.frame is not None else 0  # spans are in ex["prompt"]
        m = max(1, max(len(ex.get("mention_starts", [])) for ex in examples))
        dim = self.kb.index.dimension
        vectors = torch.zeros(len(examples), m, dim)
        token_mask = torch.zeros(len(examples), m, t, dtype=torch.long)
        for i, ex in enumerate(examples):
            offsets = offsets_list[i]
            pad = t - len(offsets)
            mentions = zip(
                ex.get("mention_starts", []),
                ex.get("mention_ends", []),
                ex.get("mention_entities", []),
                strict=True,
            )
            for j, (start, end, names) in enumerate(mentions):
                cands = [self.entity_vector(n) for n in names.split("\t") if n]
                if cands:
                    vectors[i, j] = torch.from_numpy(np.mean(cands, axis=0))
                for p, (a, b) in enumerate(offsets):
                    if b > a and a < end + shift and b > start + shift:
                        token_mask[i, j, pad + p] = 1
        return {"entity_vectors": vectors, "entity_token_mask": token_mask}

    # -- answers -----------------------------------------------------------------------------
    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of an answer: after ``Answer:`` a leading space, then eos (``plain``); the
        assistant's words, then the end-of-turn token (``chat``)."""
        if answer not in self._answers:
            text = " " + answer if self.frame is None else answer
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            self._answers[answer] = [*ids, self.end_id]
        return self._answers[answer]

    def __call__(
        self, examples: Sequence[dict], *, with_negatives: bool = True
    ) -> dict[str, torch.Tensor]:
        """Prompts, answer rows and the row layout of ``examples``.

        Examples with ``feedback: True`` always bring their negatives (refuted generations);
        the others bring up to ``n_negatives`` when ``with_negatives``.

        Returns:
            The tensors of :meth:`encode_prompts` plus ``answer_ids`` (R, A), ``answer_mask``
            (R, A), ``row_prompt`` (R,) the prompt of each row, ``gold_rows`` (P,),
            ``neg_rows`` (P, N) with -1 for no negative, ``is_feedback`` (P,) bool.
        """
        out = self.encode_prompts(examples)
        rows: list[list[int]] = []
        row_prompt, gold_rows, neg_lists = [], [], []
        for i, ex in enumerate(examples):
            gold_rows.append(len(rows))
            rows.append(self.answer_ids(ex["answer"]))
            row_prompt.append(i)
            negs = []
            if ex.get("feedback"):
                texts = ex["negatives"]
            else:
                texts = ex["negatives"][: self.n_negatives] if with_negatives else []
            for text in texts:
                negs.append(len(rows))
                rows.append(self.answer_ids(text))
                row_prompt.append(i)
            neg_lists.append(negs)
        a = max(len(r) for r in rows)
        answer_ids = torch.full((len(rows), a), self.tokenizer.pad_token_id, dtype=torch.long)
        answer_mask = torch.zeros((len(rows), a), dtype=torch.long)
        for r, ids in enumerate(rows):
            answer_ids[r, : len(ids)] = torch.tensor(ids)
            answer_mask[r, : len(ids)] = 1
        n = max(1, max(len(x) for x in neg_lists))
        neg_rows = torch.full((len(examples), n), -1, dtype=torch.long)
        for i, negs in enumerate(neg_lists):
            neg_rows[i, : len(negs)] = torch.tensor(negs, dtype=torch.long)
        out.update(
            answer_ids=answer_ids,
            answer_mask=answer_mask,
            row_prompt=torch.tensor(row_prompt, dtype=torch.long),
            gold_rows=torch.tensor(gold_rows, dtype=torch.long),
            neg_rows=neg_rows,
            is_feedback=torch.tensor([bool(ex.get("feedback")) for ex in examples]),
        )
        return out
