"""The model extractor: a causal LM with a LoRA adapter reads a sentence and writes triples.

Layout of an extractor folder (``grounded kb train-extractor --out FOLDER``)::

    FOLDER/
      adapter_config.json  adapter_model.safetensors   the LoRA adapter (peft)
      schema.json          the relations it was trained for (kg.Schema)
      extractor.json       the base model, every training setting, data counts, train log
      manifest.json        kind grounded-extractor, versions, sha256 of every file (last)

The base is loaded through :func:`grounded.model.artifacts.load_base` from what
``extractor.json`` records (a folder, a ``.gguf`` file or ``smollm2``, as ``--base``).

Reading (:class:`ExtractorModel.read`): prompts are batched (sorted by length, padded on
the left) and decoded greedily, so the output is deterministic. Decoding is constrained
cheaply: at every step only tokens of the sentence itself (each word also alone, with and
without a leading space), of the schema's relation names, of the format (``|``, newline,
``none``) and the end-of-sequence token may be chosen (:class:`AllowedTokens`). The
generation is then parsed (:func:`grounded.extract.format.parse_generation`): a line whose
relation is not in the schema, or whose head or tail is not a span of the sentence, is
dropped and counted. A triple's confidence is the geometric mean of the probabilities of
its line's tokens under the constrained distribution.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grounded.extract.format import (
    NONE,
    SEPARATOR,
    ParseCounts,
    ParsedTriple,
    format_prompt,
    line_confidences,
    parse_generation,
)
from kg.extract import Candidate, EntityFinder, Sentence
from kg.io import atomic_directory, atomic_write_json
from kg.manifest import (
    ArtifactError,
    ArtifactMissingError,
    artifact_kind,
    read_json,
    read_manifest,
    write_manifest,
)
from kg.schema import Schema

EXTRACTOR_KIND = "grounded-extractor"
EXTRACTOR_FORMAT_VERSION = 1
EXTRACTOR_FILE = "extractor.json"
SCHEMA_FILE = "schema.json"
EXTRACTOR_FIX = (
    "train it again (`grounded kb train-extractor --relations SCHEMA --kb KB --out FOLDER "
    "--overwrite`), or restore the folder from a backup"
)
_PACKAGES = ("torch", "transformers", "peft", "tokenizers", "safetensors")
_EXTRACTOR_KEYS = {"base", "settings", "data", "train", "format"}


@dataclass
class Reading:
    """What the model wrote for one sentence and what survived the parse."""

    generation: str
    triples: list[tuple[ParsedTriple, float]]
    counts: ParseCounts


class AllowedTokens:
    """A logits processor: per batch row, only the tokens that row may write (-inf else).

    Args:
        mask: bool tensor (batch, vocab); True where a token is allowed.
    """

    def __init__(self, mask: Any) -> None:
        self.mask = mask

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        # (batch, vocab); the mask may be narrower than the scores (padded embeddings)
        out = scores.new_full(scores.shape, float("-inf"))
        width = min(self.mask.shape[1], scores.shape[1])
        keep = self.mask[:, :width]
        out[:, :width] = scores[:, :width].masked_fill(~keep, float("-inf"))
        return out


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def format_token_ids(tokenizer: Any, schema: Schema) -> set[int]:
    """Tokens every row may write: relation names between separators, newline, ``none``,
    end of sequence."""
    out = (
        set(_ids(tokenizer, "\n")) | set(_ids(tokenizer, NONE)) | set(_ids(tokenizer, NONE + "\n"))
    )
    for rel in schema:
        out |= set(_ids(tokenizer, f"a{SEPARATOR}{rel.name}{SEPARATOR}b\n")) - set(
            _ids(tokenizer, "a")
        ) - set(_ids(tokenizer, "b"))  # fmt: skip
        out |= set(_ids(tokenizer, SEPARATOR.strip())) | set(_ids(tokenizer, SEPARATOR))
    for special in (tokenizer.eos_token_id, tokenizer.pad_token_id):
        if special is not None:
            out.add(int(special))
    return out


def text_token_ids(tokenizer: Any, text: str) -> set[int]:
    """Tokens a row may copy from ``text``: its own tokenization and each word's, alone
    and after a space, with and without its punctuation."""
    out = set(_ids(tokenizer, text))
    for word in text.split():
        for w in {word, word.strip(".,;:!?\"'()[]“”‘’")}:
            if w:
                out |= set(_ids(tokenizer, w)) | set(_ids(tokenizer, " " + w))
    return out


class ExtractorModel:
    """A causal LM (with its LoRA adapter) that writes triples, and the schema it knows.

    Args:
        tokenizer, model: the tokenizer and the causal LM (a ``PeftModel`` or merged).
        schema: the relations it was trained for.
        metadata: what ``extractor.json`` records.
    """

    def __init__(self, tokenizer: Any, model: Any, schema: Schema, metadata: dict) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.schema = schema
        self.metadata = metadata
        self.path: Path | None = None
        self._format_ids: set[int] | None = None

    # -- artifact --------------------------------------------------------------------
    def save_pretrained(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the adapter, ``schema.json``, ``extractor.json`` and, last, the manifest,
        atomically (see the module docstring).

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False.
            ValueError: the model holds no adapter (nothing to save).
        """
        if not hasattr(self.model, "peft_config"):
            raise ValueError("the extractor's model holds no PEFT adapter (merged?); save it "
                             "before `merge()`")  # fmt: skip
        path = Path(path)
        with atomic_directory(path, overwrite=overwrite) as tmp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # peft: "could not find a config file..."
                self.model.save_pretrained(tmp)
            self.schema.save(tmp / SCHEMA_FILE)
            atomic_write_json(tmp / EXTRACTOR_FILE, {**self.metadata, "format": _format_record()})
            write_manifest(tmp, EXTRACTOR_KIND, EXTRACTOR_FORMAT_VERSION, packages=_PACKAGES)
        self.path = path
        return path

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, base: str | None = None, merge: bool = True
    ) -> ExtractorModel:
        """Load an extractor folder, checking its manifest and every file's checksum.

        Args:
            path: the folder ``grounded kb train-extractor`` wrote.
            base: load this base instead of the one ``extractor.json`` records (the same
                model moved elsewhere).
            merge: merge the adapter into the weights (faster reading; cannot be saved).

        Raises:
            kg.manifest.ArtifactMissingError: ``path`` or a file it lists is missing.
            kg.manifest.ArtifactError: a file differs from its checksum, the folder is
                another artifact (a grounded model, a KB), or ``extractor.json`` names no base.
        """
        from peft import PeftModel

        from grounded.model.artifacts import load_base

        path = Path(path)
        if not path.is_dir():
            raise ArtifactMissingError(
                f"`extractor_model` {path} is not a folder; train one with `grounded kb "
                "train-extractor --relations SCHEMA --kb KB --out FOLDER` and pass that FOLDER"
            )
        kind = artifact_kind(path)
        if kind is not None and kind != EXTRACTOR_KIND:
            raise ArtifactError(
                f"`extractor_model` {path} is a {kind} folder, not an extractor "
                f"({EXTRACTOR_KIND}); pass the folder `grounded kb train-extractor --out` wrote"
            )
        read_manifest(path, EXTRACTOR_KIND, EXTRACTOR_FORMAT_VERSION, fix=EXTRACTOR_FIX)
        meta = read_json(path / EXTRACTOR_FILE, fix=EXTRACTOR_FIX)
        spec = base or (meta.get("base") or {}).get("spec")
        if not spec:
            raise ArtifactMissingError(
                f"{path / EXTRACTOR_FILE} names no base model (key `base.spec`); pass one "
                f"with `ExtractorModel.from_pretrained(path, base=...)`, or {EXTRACTOR_FIX}"
            )
        schema = Schema.load(path / SCHEMA_FILE)
        tokenizer, lm = load_base(spec)
        with warnings.catch_warnings():
            # peft reads a transformers property deprecated in 5.x; nothing for users to do.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            model = PeftModel.from_pretrained(lm, str(path), is_trainable=False)
        if merge:
            model = model.merge_and_unload()
        model.eval()
        out = cls(tokenizer, model, schema, meta)
        out.path = path
        return out

    # -- reading ---------------------------------------------------------------------
    def read(
        self,
        texts: Sequence[str],
        schema: Schema | None = None,
        *,
        batch_size: int = 16,
        max_new_tokens: int = 64,
        constrain: bool = True,
        show_progress: bool = False,
    ) -> list[Reading]:
        """Triples in each text, parsed and checked against ``schema`` (default: its own).

        Args:
            texts: sentences (or short passages).
            schema: the relations that may be written (a relation the model knows but
                ``schema`` lacks is dropped as ``unknown_relation``).
            batch_size: prompts per generation batch.
            max_new_tokens: the longest generation.
            constrain: restrict each step to the sentence's, the schema's and the format's
                tokens (see the module docstring).
            show_progress: a progress bar over the sentences.

        Returns:
            One :class:`Reading` per text, in order.
        """
        import torch
        from tqdm.auto import tqdm

        schema = schema or self.schema
        tok = self.tokenizer
        if self._format_ids is None:
            self._format_ids = format_token_ids(tok, self.schema)
        vocab = max(len(tok), int(self.model.get_output_embeddings().weight.shape[0]))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Reading | None] = [None] * len(texts)
        old_side = tok.padding_side
        tok.padding_side = "left"
        bar = tqdm(total=len(texts), desc="model extractor", unit="sentence",
                   disable=not show_progress)  # fmt: skip
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = [texts[i] for i in idx]
                enc = tok([format_prompt(t) for t in batch], return_tensors="pt", padding=True)
                kwargs: dict[str, Any] = {}
                if constrain:
                    mask = torch.zeros(len(batch), vocab, dtype=torch.bool)
                    for row, text in enumerate(batch):
                        ids = self._format_ids | text_token_ids(tok, text)
                        mask[row, torch.tensor(sorted(ids), dtype=torch.long)] = True
                    kwargs["logits_processor"] = [AllowedTokens(mask)]
                device = next(self.model.parameters()).device
                with torch.no_grad():
                    gen = self.model.generate(
                        input_ids=enc["input_ids"].to(device),
                        attention_mask=enc["attention_mask"].to(device),
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        output_scores=True,
                        return_dict_in_generate=True,
                        pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.eos_token_id,
                        **kwargs,
                    )
                new = gen.sequences[:, enc["input_ids"].shape[1] :]  # (batch, steps)
                steps = torch.stack(gen.scores, dim=1).float().log_softmax(-1)
                chosen = steps.gather(-1, new.unsqueeze(-1)).squeeze(-1).exp()  # (batch, steps)
                for row, i in enumerate(idx):
                    out[i] = self._parse(new[row].tolist(), chosen[row].tolist(), texts[i], schema)
                bar.update(len(idx))
        finally:
            tok.padding_side = old_side
            bar.close()
        return [r for r in out if r is not None]

    def _parse(self, ids: list[int], probs: list[float], text: str, schema: Schema) -> Reading:
        tok = self.tokenizer
        stop = {tok.eos_token_id, tok.pad_token_id} - {None}
        n = next((k for k, t in enumerate(ids) if t in stop), len(ids))
        ids, probs = ids[:n], probs[:n]
        pieces = [tok.decode([t], skip_special_tokens=True) for t in ids]
        generation = tok.decode(ids, skip_special_tokens=True)
        triples, counts = parse_generation(generation, text, schema)
        conf = line_confidences(pieces, probs) if ids else []
        scored = [(t, conf[t.line] if t.line < len(conf) else 0.0) for t in triples]
        return Reading(generation, scored, counts)


def _format_record() -> dict[str, str]:
    return {"prompt": format_prompt("{text}"), "line": f"head{SEPARATOR}relation{SEPARATOR}tail",
            "none": NONE}  # fmt: skip


class ModelExtractor:
    """The registered extractor ``model``: an :class:`ExtractorModel` over sentences.

    Args:
        schema: the relations to extract (those the model was not trained for are never
            written; a warning names them).
        finder: links each span to a known entity (KB, entities file) where one matches.
        model: an extractor folder or a loaded :class:`ExtractorModel` (required).
        batch_size, max_new_tokens, show_progress: see :meth:`ExtractorModel.read`.

    Raises:
        ValueError: no ``model`` given (the message says how to train one).
    """

    name = "model"

    def __init__(
        self,
        schema: Schema,
        finder: EntityFinder,
        model: str | Path | ExtractorModel | None = None,
        *,
        batch_size: int = 16,
        max_new_tokens: int = 64,
        show_progress: bool = False,
    ) -> None:
        if model is None:
            raise ValueError(
                "the `model` extractor needs a trained extractor folder: pass "
                "`--extractor-model FOLDER` (train one with `grounded kb train-extractor "
                "--relations SCHEMA --kb KB --out FOLDER`)"
            )
        self.schema = schema
        self.finder = finder
        self.model = (
            model if isinstance(model, ExtractorModel) else ExtractorModel.from_pretrained(model)
        )
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.show_progress = show_progress
        self.counts = ParseCounts()
        unknown = [r for r in schema.names if r not in self.model.schema]
        if unknown:
            warnings.warn(
                f"the extractor model was not trained for the relations {unknown}; it will "
                "not extract them (train it with this schema to add them)",
                stacklevel=2,
            )

    def extract(self, sentences: Sequence[Sentence]) -> list[Candidate]:
        """Candidates of every sentence; parse drops are added to :attr:`counts`."""
        readings = self.model.read(
            [s.text for s in sentences], self.schema, batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens, show_progress=self.show_progress,
        )  # fmt: skip
        out: list[Candidate] = []
        for s, reading in zip(sentences, readings, strict=True):
            self.counts.add(reading.counts)
            mentions = {m.start: m for m in self.finder.find(s.text)}
            for t, conf in reading.triples:
                rel = self.schema[t.relation]
                sm, om = mentions.get(t.subject_start), mentions.get(t.object_start)
                s_known = sm is not None and sm.known and sm.surface == t.subject
                o_known = om is not None and om.known and om.surface == t.object
                out.append(
                    Candidate(
                        sm.entity if s_known else t.subject, t.relation,
                        om.entity if o_known else t.object, s, round(conf, 6), self.name,
                        t.subject, t.object,
                        None if s_known else rel.subject_type,
                        None if o_known else rel.object_type,
                    )
                )  # fmt: skip
        return out
