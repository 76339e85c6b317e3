"""Answer questions with a trained grounded model: retrieve, inject, generate.

>>> model = GroundedModel.from_pretrained("runs/countries/model")  # doctest: +SKIP
>>> answer = model.answer(["What is the capital of Mongolia?"])[0]  # doctest: +SKIP
>>> answer.text, answer.evidence[0].text  # doctest: +SKIP
('Ulaanbaatar.', 'The capital of Mongolia is Ulaanbaatar.')
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from grounded.answers import parse_generation
from grounded.data.examples import prompt_fields
from grounded.data.prompts import SYSTEM_PROMPT
from grounded.model.batch import Batcher
from grounded.model.grounding import GroundingModel

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from grounded.model.bases import ResolvedBase
    from grounded.retrieval import Evidence, RetrievalConfig
    from grounded.verify.guard import Guard


def generate_texts(
    model: GroundingModel,
    batcher: Batcher,
    examples: Sequence[dict],
    *,
    max_new_tokens: int | Sequence[int] = 24,
    batch_size: int = 32,
    packed: float | None = None,
) -> list[str]:
    """Greedy continuations of each example's prompt (decoded, special tokens dropped).

    Args:
        max_new_tokens: the most new tokens, for every example or one per example.
        batch_size: examples generated together.
        packed: None: each batch is one left-padded ``lm.generate`` call; a number in [0, 1]:
            :func:`~grounded.model.packed.greedy_packed` with this ``max_padding`` (prompts
            prefilled in groups of similar length, rows leave the batch when they stop);
            prefix and prompt tuning, and LMs with sliding-window caches, take ``generate``.

    Raises:
        ValueError: ``max_new_tokens`` is a sequence not of one value per example.
    """
    caps = (
        [max_new_tokens] * len(examples)
        if isinstance(max_new_tokens, int)
        else [int(c) for c in max_new_tokens]
    )
    if len(caps) != len(examples):
        raise ValueError(f"`max_new_tokens` has {len(caps)} values for {len(examples)} examples")
    tok = batcher.tokenizer
    device = next(model.parameters()).device
    out: list[str] = []
    for i in range(0, len(examples), batch_size):
        chunk, chunk_caps = examples[i : i + batch_size], caps[i : i + batch_size]
        inputs = {k: v.to(device) for k, v in batcher.encode_prompts(chunk).items()}
        ids, mask = inputs.pop("prompt_ids"), inputs.pop("prompt_mask")
        new = None
        if packed is not None and not model.prompt_learning:
            from grounded.model.packed import PackingUnsupported, greedy_packed

            try:
                new = greedy_packed(
                    model, ids, mask, max_new_tokens=chunk_caps, eos_token_id=batcher.stop_ids,
                    max_padding=packed, **inputs,
                )  # fmt: skip
            except PackingUnsupported:  # a sliding-window cache: generate as evaluate does
                packed = None
        if new is None:
            new = model.generate(
                ids,
                mask,
                max_new_tokens=max(chunk_caps),
                eos_token_id=batcher.stop_ids,
                pad_token_id=tok.pad_token_id,
                **inputs,
            )
            # greedy: a row's first c tokens are what a cap of c would have given
            new = [seq[:c] for seq, c in zip(new, chunk_caps, strict=True)]
        out.extend(tok.decode(seq, skip_special_tokens=True) for seq in new)
    return out


def recorded_prompt_format(grounding: dict[str, Any]) -> str:
    """The prompt format a ``grounding.json`` record names (``plain`` for older records).

    Raises:
        ValueError: the record names a format other than ``plain`` or ``chat``.
    """
    fmt = (grounding.get("prompt_format") or {}).get("format", "plain")
    if fmt not in ("plain", "chat"):
        raise ValueError(
            f"grounding.json names `prompt_format` {fmt!r}; this grounded reads 'plain' or "
            "'chat': upgrade grounded"
        )
    return fmt


def recorded_system_prompt(grounding: dict[str, Any]) -> str | None:
    """The system prompt a ``grounding.json`` record names (None: none was given, as in
    records written before the setting)."""
    system = (grounding.get("prompt_format") or {}).get("system")
    if system is not None and not isinstance(system, str):
        raise ValueError(
            f"grounding.json: `prompt_format.system` must be a string or null, got {system!r}; "
            "the file is damaged: train the model again"
        )
    return system


@dataclass
class Answer:
    """A generated answer and the evidence the model was given.

    Behind a guard, ``text`` is what the guard shows, ``original`` what the model said and
    ``guard_action`` one of ``kept``, ``revised``, ``abstained``; both are None otherwise.
    """

    question: str
    text: str
    evidence: list[Evidence] = field(default_factory=list)
    original: str | None = None
    guard_action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"question": self.question, "answer": self.text}
        if self.guard_action is not None:
            out.update(original=self.original, guard_action=self.guard_action)
        out["evidence"] = [e.to_dict() for e in self.evidence]
        return out


class GroundedModel:
    """A trained grounded model ready to answer: base + adapter + injection + its KB.

    Build with :meth:`from_pretrained`. ``answer`` retrieves evidence with the retrieval
    settings the model was trained with, writes and/or injects it, and decodes greedily.

    Args:
        model: the grounding model (e.g. ``TrainResult.model``, still in memory).
        tokenizer: its tokenizer.
        kb: the knowledge base evidence comes from (None only for a model without injection).
        grounding: the ``grounding.json`` record of the model; its ``prompt_format``
            ``format`` (``plain`` or ``chat``; ``plain`` when absent) is how prompts are built.
        retrieval: retrieval settings; default: those in ``grounding``.

    Raises:
        ValueError: the model reads evidence and ``kb`` is None, or the recorded prompt
            format is unknown or needs a chat template the tokenizer lacks.
    """

    def __init__(
        self,
        model: GroundingModel,
        tokenizer: Any,
        kb: KnowledgeBase | None,
        grounding: dict[str, Any],
        retrieval: RetrievalConfig | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.kb = kb
        self.grounding = grounding
        self.modes: tuple[str, ...] = tuple(model.injection.config.modes)
        from grounded.training.config import TrainConfig

        # nested since the configs were composed; flat in older grounding.json files
        settings = TrainConfig.from_dict(grounding.get("settings", {}), origin="grounding.json")
        if self.modes and kb is None:
            raise ValueError(
                f"the model reads evidence (injection {'+'.join(self.modes)}); pass `kb`"
            )
        if retrieval is None and grounding.get("retrieval"):
            from grounded.retrieval import RetrievalConfig

            retrieval = RetrievalConfig(**grounding["retrieval"])  # as the model was trained
        self.retriever = kb.retriever_for(retrieval) if self.modes and kb is not None else None
        self.batcher = Batcher(
            tokenizer,
            kb,  # type: ignore[arg-type]
            reads_vectors=model.injection.reads_vectors,
            reads_entities=model.injection.reads_entities,
            max_prompt_tokens=settings.data.max_prompt_tokens,
            prompt_format=recorded_prompt_format(grounding),
            system_prompt=recorded_system_prompt(grounding),
        )
        self.max_new_tokens = settings.feedback.max_new_tokens

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        kb: KnowledgeBase | str | Path | None = None,
        *,
        base: str | Path | ResolvedBase | None = None,
        device: str | None = None,
        base_cache: str | Path | None = None,
    ) -> GroundedModel:
        """Load a folder written by ``grounded train``.

        Args:
            model_dir: the trained model folder.
            kb: the knowledge base (object or folder); default: the one named in
                ``grounding.json``. A KB whose checksum differs from the training one warns.
            base: the base model (a folder, a ``.gguf`` file, a name such as ``smollm2``:
                see :func:`~grounded.model.bases.resolve_base`); default: the one
                ``grounding.json`` names (:func:`recorded_base`).
            device: ``cpu``, ``cuda``, ...; default: cuda when available.
            base_cache: where converted GGUF bases live (default: ``$GROUNDED_CACHE/bases``,
                else ``~/.cache/grounded/bases``).

        Raises:
            FileNotFoundError: the folder, a file its manifest lists, the base model or the
                KB is missing.
            ValueError: a file differs from its checksum (changed, truncated), a JSON file is
                damaged, a weight is NaN or infinite, or ``base`` is not the base the model
                was trained with (its adapter does not fit).
        """
        from peft import PeftModel

        from grounded.injection.layer import KnowledgeInjection
        from grounded.kb import KnowledgeBase
        from grounded.model.artifacts import load_base, open_model_folder
        from grounded.model.bases import recorded_base

        model_dir = Path(model_dir)
        grounding = open_model_folder(model_dir)  # checksums, grounding.json, finite weights
        injection = KnowledgeInjection.from_pretrained(model_dir)
        if injection.config.modes:
            if kb is None:
                kb = grounding["kb"]["path"]
            if not isinstance(kb, KnowledgeBase):
                kb = KnowledgeBase.load(kb)
            if kb.checksum != grounding["kb"].get("checksum"):
                warnings.warn(
                    f"knowledge base {kb.path} differs from the one {model_dir} was trained "
                    f"with (checksum {kb.checksum[:12]}… vs "
                    f"{str(grounding['kb'].get('checksum'))[:12]}…); answers use the new facts",
                    stacklevel=2,
                )
        elif isinstance(kb, (str, Path)):
            kb = KnowledgeBase.load(kb)
        if base is None:
            base = recorded_base(grounding, cache_dir=base_cache)  # converted again if need be
        tokenizer, lm = load_base(base, cache_dir=base_cache)
        with warnings.catch_warnings():
            # peft calls a transformers property deprecated in 5.x; nothing for users to do.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            # An adapter folder is data (JSON + safetensors): peft runs no code from it and
            # takes no `trust_remote_code`.
            try:
                lm = PeftModel.from_pretrained(lm, str(model_dir))
            except RuntimeError as e:
                if "size mismatch" not in str(e):
                    raise
                raise ValueError(
                    f"base {base or grounding['base_model']} differs from the base "
                    f"{grounding['base_model']} that {model_dir} was trained with (its adapter "
                    "weights do not fit the layers); pass that base with `--base`, or leave "
                    "`--base` out"
                ) from None
        model = GroundingModel(lm, injection)
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, tokenizer, kb, grounding)  # type: ignore[arg-type]

    @classmethod
    def from_base(
        cls,
        base: str | Path,
        kb: KnowledgeBase | None = None,
        *,
        text_evidence: bool = False,
        retrieval: RetrievalConfig | None = None,
        max_new_tokens: int = 24,
        prompt_format: str = "auto",
        system_prompt: str | None = SYSTEM_PROMPT,
        device: str | None = None,
        base_cache: str | Path | None = None,
    ) -> GroundedModel:
        """The base model without any adapter: zero-shot, or with evidence in the prompt.

        These are the evaluation's reference variants: ``base`` (``text_evidence=False``)
        and ``rag`` (retrieved facts written into the prompt, nothing trained).
        ``prompt_format``: ``auto`` (the chat template when the tokenizer has one), ``plain``
        or ``chat``; ``system_prompt``: the chat format's system turn. Their defaults are the
        training defaults, so the baselines read prompts as the trained variants do.
        ``base``: see :func:`~grounded.model.bases.resolve_base` (``base_cache``: where a
        GGUF base is converted to).

        Raises:
            ValueError: ``text_evidence`` without ``kb``; a bad ``prompt_format``.
            FileNotFoundError: ``base`` is not a model folder.
        """
        from grounded.data.prompts import resolve_prompt_format
        from grounded.injection.layer import InjectionConfig, KnowledgeInjection
        from grounded.model.artifacts import load_base
        from grounded.model.bases import resolve_base

        if text_evidence and kb is None:
            raise ValueError("`text_evidence=True` retrieves evidence; pass `kb`")
        base = resolve_base(base, cache_dir=base_cache)
        tokenizer, lm = load_base(base)
        fmt = resolve_prompt_format(prompt_format, tokenizer)
        injection = KnowledgeInjection(InjectionConfig(modes=["text"] if text_evidence else []))
        model = GroundingModel(lm, injection)
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        grounding = {
            "base_model": str(base.folder),
            "base": base.record(),
            "settings": {"max_new_tokens": max_new_tokens},
            "retrieval": dataclasses.asdict(retrieval) if retrieval is not None else None,
            "prompt_format": {
                "format": fmt,
                "system": system_prompt or None,
                "evidence_in_prompt": text_evidence,
            },
        }
        out = cls(model, tokenizer, kb, grounding)
        # the one the template took (None where it refuses a system turn)
        grounding["prompt_format"]["system"] = out.batcher.system_prompt
        return out

    @property
    def retrieval_key(self) -> str | None:
        """Identifies the evidence this model retrieves (None: it reads none): models with
        equal keys over the same KB get equal evidence, so a caller may retrieve once."""
        if self.retriever is None:
            return None
        return json.dumps(dataclasses.asdict(self.retriever.config), sort_keys=True)

    def retrieve(self, questions: Sequence[str]) -> list[list[Evidence]]:
        """The evidence this model is given for each question (empty lists without any)."""
        if self.retriever is None:
            return [[] for _ in questions]
        return self.retriever.retrieve_batch(list(questions))

    def examples(
        self, questions: Sequence[str], evidence: Sequence[list[Evidence]] | None = None
    ) -> tuple[list[dict], list[list[Evidence]]]:
        """The prompt fields of each question, and its evidence (retrieved if not given)."""
        evidence = list(evidence) if evidence is not None else self.retrieve(questions)
        text = "text" in self.modes
        link = self.model.injection.reads_entities
        graph = self.kb.graph if self.kb is not None else None
        examples = [
            prompt_fields(graph, q, [(e.id, e.text, e.triple) for e in ev], text, link)
            for q, ev in zip(questions, evidence, strict=True)
        ]
        return examples, evidence

    def answer(
        self,
        questions: Sequence[str],
        *,
        max_new_tokens: int | Sequence[int] | None = None,
        batch_size: int = 32,
        evidence: Sequence[list[Evidence]] | None = None,
        guard: Guard | None = None,
        packed: float | None = None,
    ) -> list[Answer]:
        """Answer each question (greedy decoding), with the evidence it was given.

        ``max_new_tokens``: for every question or one per question (None: the model's
        setting). ``packed``: see :func:`generate_texts` (the server's generation).

        ``evidence``: already retrieved by :meth:`retrieve` (of a model with the same
        :attr:`retrieval_key`); retrieved here when None. ``guard``: a
        :class:`grounded.verify.Guard` that verifies each answer against its KB first
        (kept, revised or abstained; the model's own words stay in ``Answer.original``).
        """
        examples, evidence = self.examples(questions, evidence)
        texts = generate_texts(
            self.model,
            self.batcher,
            examples,
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            batch_size=batch_size,
            packed=packed,
        )
        answers = [
            Answer(q, parse_generation(t), ev)
            for q, t, ev in zip(questions, texts, evidence, strict=True)
        ]
        if guard is not None:
            checked = guard.apply(list(questions), [a.text for a in answers])
            for a, g in zip(answers, checked, strict=True):
                a.original, a.text, a.guard_action = a.text, g.text, g.action
        return answers
