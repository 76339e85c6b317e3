"""`FactChecker`: a cross-encoder reading (claim, evidence) → supported / refuted / not enough info.

A Hugging Face sequence-classification model over the pair "claim [SEP] evidence", by default
all-MiniLM-L6-v2 (the packaged sentence encoder, a 6-layer BERT) with a new 3-way head,
trained with :class:`transformers.Trainer` (:func:`train_checker`). A checker folder is a
plain Hugging Face checkpoint (``config.json``, ``model.safetensors``, tokenizer files) plus
``factcheck.json``: label map, the knowledge base it was trained on, every setting, metrics,
and the calibration (per-label biases fitted on a dev split, applied to every prediction).

It scores any (claim, evidence) pairs, no knowledge base needed
(:meth:`FactChecker.predict`); evidence longer than the window is read in overlapping
chunks (:mod:`~grounded.factcheck.chunking`), never cut to its start.
The folder also holds ``manifest.json`` (kg.manifest), the sha256 of every file, checked
on load.

A checker that cannot decide soundly refuses to: loading fails on a changed file, a missing
vocabulary (a tokenizer reading every word as unknown) or NaN weights, and prediction fails
on NaN or infinite scores. Loading never runs code from the folder.

Any local sequence-classification checkpoint whose labels name the three verdicts loads
(FEVER-style names such as ``SUPPORTS``/``REFUTES``/``NOT ENOUGH INFO`` are recognized).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from grounded.factcheck import chunking
from grounded.factcheck.decision import DecisionRule
from grounded.factcheck.labels import (
    Predictions,
    apply_biases,
    as_pairs,
    label_columns,
    probabilities,
)
from grounded.types import LABELS
from kg import normalize
from kg.io import atomic_directory, atomic_write_json
from kg.manifest import ArtifactError, check_record, read_json, verify_if_ours, write_manifest

if TYPE_CHECKING:
    pass

CHECKER_FILE = "factcheck.json"
CHECKER_FORMAT_VERSION = 1
CHECKER_KIND = "grounded-checker"
CHECKER_MANIFEST_VERSION = 1
"""Version of a checker folder's ``manifest.json``."""
CHECKER_FIX = (
    "train the checker again (`grounded factcheck train KB --out CHECKER --overwrite`), or "
    "restore the folder from a backup"
)
DEFAULT_EVIDENCE_K = 3
"""Retrieved evidence items the checker reads per claim, unless a checker records another."""


def alias_notes(linker: Any, text: str) -> list[str]:
    """Sentences saying which entity each other name in ``text`` stands for.

    The retrieved facts name entities by their canonical names; a claim may use an alias
    ("Republic of Burundi", "Ulan Bator"). The knowledge base's linker knows the alias; a text
    model cannot guess it, so the checker reads it as evidence: "Republic of Burundi is
    another name for Burundi." Mentions that are a canonical name, or that may name several
    entities, get no note.

    Args:
        linker: the knowledge base's entity linker (``kb.graph.linker``); its ``link(text)``
            returns mentions with ``surface`` and ``candidates``.
        text: the claim (question and answer, when it answers one).

    Example:
        >>> from kg import KnowledgeGraph, Relation, Schema, Triple
        >>> kg = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]),
        ...     aliases={"Ulaanbaatar": ["Ulan Bator"]})
        >>> alias_notes(kg.linker, "The capital of Mongolia is Ulan Bator.")
        ['Ulan Bator is another name for Ulaanbaatar.']
    """
    notes: dict[str, None] = {}
    for m in linker.link(text):
        if len(m.candidates) != 1:
            continue
        (entity,) = m.candidates
        if normalize(m.surface) != normalize(entity):
            notes[f"{m.surface} is another name for {entity}."] = None
    return list(notes)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report ("classifier.weight MISSING" is expected here)."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def _model_folder(path: Path) -> Path:
    """The folder holding ``config.json``; sentence-transformers may keep it in a module."""
    if (path / "config.json").is_file():
        return path
    modules = path / "modules.json"
    if modules.is_file():
        for m in json.loads(modules.read_text(encoding="utf-8")):
            if (
                str(m.get("type", "")).endswith("Transformer")
                and (path / m.get("path", "") / "config.json").is_file()
            ):
                return path / m.get("path", "")
    raise FileNotFoundError(
        f"`{path}` holds no config.json (nor a sentence-transformers Transformer module); pass "
        "a local Hugging Face model folder"
    )


class FactChecker:
    """A sequence-classification model and its tokenizer, predicting the three verdicts.

    Args:
        model: a ``PreTrainedModel`` for sequence classification whose ``config.id2label``
            names the three verdicts.
        tokenizer: its tokenizer.
        max_length: the window in tokens; longer evidence is read in chunks.
        metadata: what ``factcheck.json`` records (kb, settings, metrics, and
            ``calibration``: ``{"biases": {label: log-space bias}}``, applied to every
            prediction).

    Raises:
        ValueError: the model's labels do not name the three verdicts.

    Example:
        >>> checker = FactChecker.from_pretrained("runs/countries/checker")  # doctest: +SKIP
        >>> preds = checker.predict([("The capital of Chad is Paris.",
        ...                           "The capital of Chad is N'Djamena.")])  # doctest: +SKIP
        >>> preds.labels, preds.probabilities.shape  # doctest: +SKIP
        (['refuted'], (1, 3))
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 128,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.path: Path | None = None
        self.columns = label_columns(model.config.id2label, "the model")
        calibration = self.metadata.get("calibration", {})
        biases = calibration.get("biases", {})
        self.biases = np.array([float(biases.get(lab, 0.0)) for lab in LABELS])
        self.rule = DecisionRule.from_dict(calibration.get("rule"))

    def set_calibration(
        self,
        biases: Sequence[float],
        info: dict[str, Any] | None = None,
        rule: DecisionRule | None = None,
    ) -> None:
        """Use per-label log-space ``biases`` (in :data:`LABELS` order) and the decision
        ``rule`` (None: keep the current one) from now on.

        They are recorded in :attr:`metadata` (``calibration``), so :meth:`save_pretrained`
        writes them and :meth:`from_pretrained` restores them.
        """
        self.biases = np.asarray(biases, dtype=np.float64).reshape(len(LABELS))
        if rule is not None:
            self.rule = rule
        self.metadata["calibration"] = {
            **(info or {}),
            "biases": {lab: round(float(b), 6) for lab, b in zip(LABELS, self.biases, strict=True)},
            "rule": self.rule.to_dict(),
        }

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_base(
        cls,
        base: str | Path | None = None,
        *,
        max_length: int = 128,
        seed: int = 0,
        device: str = "cpu",
    ) -> FactChecker:
        """A checker to train: ``base``'s encoder with a new 3-way head (seeded).

        A sequence-classification checkpoint that already names the three verdicts keeps
        its head (training continues from it).

        Raises:
            FileNotFoundError: ``base`` is not a local model folder.
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from grounded.model.artifacts import BASE_KIND, check_tokenizer
        from grounded.model.loadable import no_remote_code, refuse_pickled
        from index import default_encoder_path

        path = Path(base) if base else default_encoder_path()
        if not path.exists():
            raise FileNotFoundError(f"`base_model` {str(path)!r} does not exist")
        verify_if_ours(path, (CHECKER_KIND, BASE_KIND), 1, markers=(CHECKER_FILE,))
        folder = _model_folder(path)
        refuse_pickled(folder, "`base_model`")
        with no_remote_code(folder, "`base_model`"):
            config = AutoConfig.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
        keep_head = False
        with contextlib.suppress(ValueError):
            keep_head = any(
                a.endswith("ForSequenceClassification") for a in config.architectures or ()
            )
            keep_head = keep_head and bool(label_columns(config.id2label))
        transformers.set_seed(seed)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if not keep_head:
            kwargs.update(
                num_labels=len(LABELS),
                id2label=dict(enumerate(LABELS)),
                label2id={lab: i for i, lab in enumerate(LABELS)},
                ignore_mismatched_sizes=True,
            )
        with _quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, trust_remote_code=False, **kwargs
            )
            tokenizer = AutoTokenizer.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
        check_tokenizer(tokenizer, folder)
        model.to(device)
        return cls(model, tokenizer, max_length=max_length, metadata={"base_model": str(path)})

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str = "cpu") -> FactChecker:
        """Load a checker folder (or any local sequence-classification checkpoint).

        A folder written by :meth:`save_pretrained` is checked against its manifest (every
        file's sha256); a checkpoint from elsewhere has none to check. Either way the folder
        runs no code, its tokenizer must read text, and its weights must be finite.

        Raises:
            FileNotFoundError: ``path`` is not a model folder, or a file its manifest lists
                is missing.
            ValueError: the checkpoint is not a classifier of the three verdicts; a file
                differs from its checksum; ``factcheck.json`` is damaged or from a newer
                grounded; the tokenizer cannot read text; a weight is NaN or infinite.
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from grounded.model.artifacts import check_finite, check_tokenizer
        from grounded.model.loadable import no_remote_code, refuse_pickled

        path = Path(path)
        if not (path / "config.json").is_file() and not (path / CHECKER_FILE).is_file():
            raise FileNotFoundError(
                f"{path} is not a fact-checker folder (no config.json); train one with "
                "`grounded factcheck train KB --out CHECKER`"
            )
        verify_if_ours(
            path, CHECKER_KIND, CHECKER_MANIFEST_VERSION, markers=(CHECKER_FILE,), fix=CHECKER_FIX
        )
        metadata: dict[str, Any] = {}
        if (path / CHECKER_FILE).is_file():
            metadata = read_json(path / CHECKER_FILE, fix=CHECKER_FIX)
            check_record(
                metadata, path / CHECKER_FILE, version=CHECKER_FORMAT_VERSION, fix=CHECKER_FIX
            )
        refuse_pickled(path, "checker")
        with no_remote_code(path, "checker"):
            config = AutoConfig.from_pretrained(
                path, local_files_only=True, trust_remote_code=False
            )
        if not any(a.endswith("ForSequenceClassification") for a in config.architectures or ()):
            raise ValueError(
                f"{path} holds a {config.architectures} checkpoint, not a sequence classifier; "
                "use it as a starting point with `--base-model` in `grounded factcheck train`"
            )
        label_columns(config.id2label, str(path))
        model = AutoModelForSequenceClassification.from_pretrained(
            path, local_files_only=True, trust_remote_code=False
        )
        check_finite(model.state_dict(), path)
        tokenizer = AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=False
        )
        check_tokenizer(tokenizer, path)
        model.to(device).eval()
        checker = cls(
            model, tokenizer, max_length=int(metadata.get("max_length", 128)), metadata=metadata
        )
        checker.path = path
        return checker

    def save_pretrained(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the checkpoint (safetensors), tokenizer, ``factcheck.json`` and, last,
        ``manifest.json`` (the sha256 of every file), atomically.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is False.
        """
        path = Path(path)
        with atomic_directory(path, overwrite=overwrite) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            meta = dict(self.metadata)
            meta.update(
                format_version=CHECKER_FORMAT_VERSION,
                labels=list(LABELS),
                label2id={lab: self.columns[i] for i, lab in enumerate(LABELS)},
                max_length=self.max_length,
            )
            meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            atomic_write_json(tmp / CHECKER_FILE, meta)
            write_manifest(
                tmp,
                CHECKER_KIND,
                CHECKER_MANIFEST_VERSION,
                packages=("torch", "transformers", "tokenizers", "safetensors"),
            )
        self.path = path
        return path

    def quantized(self) -> FactChecker:
        """A copy for fast CPU inference: linear layers in int8 (dynamic quantization).

        About twice the pairs per second on CPU; probabilities move by about 0.01. The copy
        cannot be trained or saved as a Hugging Face checkpoint: keep the original for that.
        """
        import copy
        import warnings

        import torch

        with warnings.catch_warnings():
            # torch.ao's eager quantization is deprecated in favour of torchao; it still
            # works, and torchao is not a dependency.
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(self.model).cpu(), {torch.nn.Linear}, dtype=torch.qint8
            )
        out = FactChecker(model, self.tokenizer, max_length=self.max_length, metadata=self.metadata)
        out.biases = self.biases.copy()
        out.rule = self.rule
        out.path = self.path
        return out

    # -- prediction --------------------------------------------------------------------------
    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def predict_proba(
        self,
        claims: Sequence[str],
        evidence: Sequence[str],
        *,
        batch_size: int = 64,
        split_claims: bool = False,
        show_progress: bool | None = None,
        calibrated: bool = True,
    ) -> np.ndarray:
        """Verdict probabilities, (len(claims), 3) in :data:`LABELS` order.

        See :meth:`predict`; this is its array without the labels.
        """
        return self._predict(
            list(claims),
            list(evidence),
            batch_size=batch_size,
            split_claims=split_claims,
            show_progress=show_progress,
            calibrated=calibrated,
        )[0]

    def predict(
        self,
        pairs: Sequence[Any],
        evidence: Sequence[Any] | None = None,
        *,
        batch_size: int = 64,
        split_claims: bool = False,
        show_progress: bool | None = None,
        calibrated: bool = True,
        rule: DecisionRule | None = None,
    ) -> Predictions:
        """Judge (claim, evidence) pairs; no knowledge base needed.

        Evidence that does not fit beside the claim in :attr:`max_length` tokens is cut into
        overlapping chunks of sentences (:func:`~grounded.factcheck.chunking.chunk_evidence`),
        each chunk is judged with the claim, and the chunk verdicts combine as in MiniCheck /
        AlignScore (:func:`~grounded.factcheck.chunking.combine_chunks`): P(supported) is the
        largest over chunks, P(refuted) comes from the chunk most confident in refutation
        (capped so the three sum to 1), not enough info is the rest. With ``split_claims``
        each sentence of a multi-sentence claim is judged on its own and the claim takes the
        distribution of its least supported sentence
        (:func:`~grounded.factcheck.chunking.weakest_sentence`). The checker's calibration
        biases (:attr:`biases`) are applied last, unless ``calibrated`` is False, and the
        labels come from the decision rule (:attr:`rule`, or ``rule``;
        :func:`~grounded.factcheck.decision.decide`): close or flat probabilities, and a
        refutation that does not stand clearly above the rest, give not enough info.

        Pairs are sorted by length so each batch pads little; rows come back in input order.

        Args:
            pairs: ``(claim, evidence)`` tuples; evidence is a string or a list of strings
                (joined, best first). The older two-list form ``predict(claims, evidence)``
                is accepted too.
            evidence: only for the two-list form.
            batch_size: pairs (chunks) per forward pass.
            split_claims: judge each sentence of a claim separately.
            show_progress: a progress bar (default: when more than 1,000 chunks are read).
            calibrated: apply the calibration biases.
            rule: the decision rule (default: the checker's own, :attr:`rule`).

        Returns:
            :class:`Predictions`: ``probabilities`` (n, 3), ``labels`` and ``reasons``
            (:func:`~grounded.factcheck.decision.decide`); indexing gives
            :class:`CheckerPrediction` objects.

        Raises:
            ValueError: a pair is malformed, the two lists differ in length, or
                ``batch_size`` < 1.
            kg.manifest.ArtifactError: the model gives NaN or infinite scores (damaged
                weights).

        Example:
            >>> preds = checker.predict([("Paris is in France.",
            ...                           ["Paris is the capital of France."])])  # doctest: +SKIP
            >>> preds.labels[0], preds.probabilities[0].sum()  # doctest: +SKIP
            ('supported', 1.0)
        """
        claims, texts = as_pairs(pairs, evidence)
        probs, chunks = self._predict(
            claims,
            texts,
            batch_size=batch_size,
            split_claims=split_claims,
            show_progress=show_progress,
            calibrated=calibrated,
        )
        return Predictions(probs, chunks, rule if rule is not None else self.rule)

    def _predict(
        self,
        claims: list[str],
        evidence: list[str],
        *,
        batch_size: int,
        split_claims: bool,
        show_progress: bool | None,
        calibrated: bool,
    ) -> tuple[np.ndarray, list[int]]:
        if len(claims) != len(evidence):
            raise ValueError(
                f"`claims` ({len(claims)}) and `evidence` ({len(evidence)}) must have one "
                "entry per pair"
            )
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
        n = len(claims)
        if not n:
            return np.zeros((0, len(LABELS))), []
        evidence = [e if e.strip() else "(no evidence)" for e in evidence]
        # units: (pair, sentence of the claim, claim text, evidence chunk)
        parts = [chunking.claim_sentences(c) if split_claims else [c] for c in claims]
        flat = [(i, k, s) for i, ss in enumerate(parts) for k, s in enumerate(ss)]
        units: list[tuple[int, int, str, str]] = []
        with _quiet_transformers():  # "longer than the maximum" is why we chunk
            lengths = self.tokenizer(
                [s for _, _, s in flat], [evidence[i] for i, _, _ in flat], truncation=False
            )["input_ids"]
            for (i, k, s), ids in zip(flat, lengths, strict=True):
                if len(ids) <= self.max_length:
                    units.append((i, k, s, evidence[i]))
                    continue
                for chunk in chunking.chunk_evidence(
                    self.tokenizer, s, evidence[i], self.max_length
                ):
                    units.append((i, k, s, chunk))
        unit_probs = self._forward(
            [u[2] for u in units], [u[3] for u in units], batch_size, show_progress
        )
        groups: dict[tuple[int, int], list[int]] = {}
        for j, (i, k, _, _) in enumerate(units):
            groups.setdefault((i, k), []).append(j)
        per_sentence: dict[int, list[np.ndarray]] = {}
        n_chunks = [0] * n
        for (i, _), idx in groups.items():
            per_sentence.setdefault(i, []).append(chunking.combine_chunks(unit_probs[idx]))
            n_chunks[i] = max(n_chunks[i], len(idx))
        out = np.stack([chunking.weakest_sentence(np.stack(per_sentence[i])) for i in range(n)])
        if calibrated:
            out = apply_biases(out, self.biases)
        return out, n_chunks

    def _forward(
        self,
        claims: list[str],
        evidence: list[str],
        batch_size: int,
        show_progress: bool | None,
    ) -> np.ndarray:
        """Softmax over the verdicts for pairs that fit the window, (n, 3)."""
        import torch
        from tqdm.auto import tqdm

        out = np.zeros((len(claims), len(LABELS)), dtype=np.float64)
        enc = self.tokenizer(
            claims, evidence, truncation="longest_first", max_length=self.max_length
        )
        order = np.argsort([len(ids) for ids in enc["input_ids"]], kind="stable")
        keys = list(enc.keys())
        self.model.eval()
        show = len(claims) > 1000 if show_progress is None else show_progress
        with (
            torch.inference_mode(),
            tqdm(total=len(claims), desc="checking", unit="pair", disable=not show) as bar,
        ):
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                batch = self.tokenizer.pad(
                    {k: [enc[k][j] for j in idx] for k in keys}, return_tensors="pt"
                )
                logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits
                logits = logits.float().cpu().numpy()
                if not np.isfinite(logits).all():
                    raise ArtifactError(
                        f"the fact-checker {self.path or '(in memory)'} gave NaN or infinite "
                        "scores, so it cannot decide; its weights are damaged (or training "
                        "diverged): restore the folder from a backup or train it again"
                    )
                out[idx] = probabilities(logits, self.columns)
                bar.update(len(idx))
        return out
