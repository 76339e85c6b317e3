"""`Batcher`: examples (dicts) → the tensors :class:`GroundingModel` takes.

A batch holds P prompts and R ≥ P answer rows. Each prompt has one gold row and up to N
negative rows (graph-contradicted answers, or for feedback examples the model's refuted
generations); every row is teacher-forced after its prompt. Prompts are left-padded (the
answers continue them through the KV cache), answers right-padded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

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
        max_prompt_tokens: prompts are cut from the left beyond this (special tokens kept).
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
    ) -> None:
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
        self._eos_appended: bool | None = None

    # -- prompts -----------------------------------------------------------------------------
    def encode_prompts(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """Left-padded prompt ids and mask, plus evidence tensors the injection reads.

        The tokenizer pads and truncates (``padding_side="left"``, ``truncation_side``
        "left" for the call): a prompt longer than ``max_prompt_tokens`` keeps its special
        tokens (bos) and the end of its text, where the question is.

        Returns:
            ``prompt_ids`` (P, T), ``prompt_mask`` (P, T); with vectors ``evidence_vectors``
            (P, K, E) and ``evidence_mask`` (P, K); with entities ``entity_vectors``
            (P, M, E) and ``entity_token_mask`` (P, M, T).
        """
        tok = self.tokenizer
        prompts = [ex["prompt"] for ex in examples]
        # A tokenizer that appends eos gets one more token, dropped below: the answer
        # continues the prompt, so no prompt may end in eos.
        appends_eos = self._appends_eos()
        side, tok.truncation_side = tok.truncation_side, "left"  # no call argument for it
        try:
            enc = tok(
                prompts,
                add_special_tokens=True,
                padding=True,
                padding_side="left",
                truncation=True,
                max_length=self.max_prompt_tokens + appends_eos,
                return_offsets_mapping=self.reads_entities,
                return_tensors="pt",
            )
        finally:
            tok.truncation_side = side
        prompt_ids, prompt_mask = enc["input_ids"], enc["attention_mask"].long()
        offsets = enc["offset_mapping"] if self.reads_entities else None  # (P, T, 2)
        if appends_eos:  # left padding puts every row's eos in the last column
            prompt_ids, prompt_mask = prompt_ids[:, :-1], prompt_mask[:, :-1]
            offsets = offsets[:, :-1] if offsets is not None else None
        if not self._warned and self._truncated(enc, prompts):
            warnings.warn(
                f"a prompt has more than {self.max_prompt_tokens} tokens; keeping its last "
                f"{self.max_prompt_tokens} (raise `max_prompt_tokens` or lower `k`)",
                stacklevel=2,
            )
            self._warned = True
        out = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask}
        if self.reads_vectors:
            out.update(self._evidence(examples))
        if self.reads_entities:
            out.update(self._entities_of(examples, offsets))
        return out

    def _appends_eos(self) -> bool:
        if self._eos_appended is None:
            ids = self.tokenizer("a", add_special_tokens=True)["input_ids"]
            self._eos_appended = bool(ids) and ids[-1] == self.tokenizer.eos_token_id
        return self._eos_appended

    def _truncated(self, enc: Any, prompts: list[str]) -> bool:
        """Whether the tokenizer cut any prompt (fast tokenizers record the overflow)."""
        if enc.encodings is not None:
            return any(e.overflowing for e in enc.encodings)
        full = enc["attention_mask"].sum(1) == enc["attention_mask"].shape[1]
        longest = [p for p, f in zip(prompts, full.tolist(), strict=True) if f]
        limit = self.max_prompt_tokens + self._appends_eos()
        return any(len(ids) > limit for ids in self.tokenizer(longest)["input_ids"])

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
        self, examples: Sequence[dict], offsets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Mention vectors (P, M, E) and the prompt tokens of each mention (P, M, T).

        ``offsets`` (P, T, 2) are the character spans of the left-padded prompt tokens;
        padding and special tokens span (0, 0) and belong to no mention.
        """
        m = max(1, max(len(ex.get("mention_starts", [])) for ex in examples))
        dim = self.kb.index.dimension
        vectors = torch.zeros(len(examples), m, dim)
        token_mask = torch.zeros(len(examples), m, offsets.shape[1], dtype=torch.long)
        a, b = offsets[..., 0], offsets[..., 1]  # (P, T)
        for i, ex in enumerate(examples):
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
                token_mask[i, j] = ((b[i] > a[i]) & (a[i] < end) & (b[i] > start)).long()
        return {"entity_vectors": vectors, "entity_token_mask": token_mask}

    # -- answers -----------------------------------------------------------------------------
    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of an answer as it follows ``Answer:`` (a leading space, then eos)."""
        if answer not in self._answers:
            ids = self.tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
            self._answers[answer] = [*ids, self.tokenizer.eos_token_id]
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
        answers = self.tokenizer.pad(
            {"input_ids": rows}, padding=True, padding_side="right", return_tensors="pt"
        )
        n = max(1, max(len(x) for x in neg_lists))
        neg_rows = torch.full((len(examples), n), -1, dtype=torch.long)
        for i, negs in enumerate(neg_lists):
            neg_rows[i, : len(negs)] = torch.tensor(negs, dtype=torch.long)
        out.update(
            answer_ids=answers["input_ids"],
            answer_mask=answers["attention_mask"].long(),
            row_prompt=torch.tensor(row_prompt, dtype=torch.long),
            gold_rows=torch.tensor(gold_rows, dtype=torch.long),
            neg_rows=neg_rows,
            is_feedback=torch.tensor([bool(ex.get("feedback")) for ex in examples]),
        )
        return out
