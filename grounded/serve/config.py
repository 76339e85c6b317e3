"""Settings of ``grounded serve`` (:class:`ServeConfig`): where it listens, the guard, batching
and the limits every request is held to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

GUARD_CHOICES: tuple[str, ...] = ("off", "abstain", "revise")
GENERATION_CHOICES: tuple[str, ...] = ("packed", "padded")
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")


@dataclass
class ServeConfig:
    """Settings of the server (the CLI's flags, a YAML file's keys and the Python API's).

    Raises:
        ValueError: a setting out of range (named, with the value received).
    """

    host: str = field(
        default="127.0.0.1",
        metadata={
            "help": "Address to listen on: loopback only by default; name another (0.0.0.0) "
            "to serve other machines, and set an API key then."
        },
    )
    port: int = field(default=8000, metadata={"help": "Port to listen on (0: any free one)."})
    guard: str = field(
        default="off",
        metadata={
            "help": "Verify each answer before it is sent: off; abstain (unsupported answers "
            "become the abstention phrase); revise (answers the KB can correct are corrected)."
        },
    )
    model_name: str = field(
        default="",
        metadata={"help": "Name clients give as `model`; default: the model folder's name."},
    )
    batch_window_ms: float = field(
        default=10.0,
        metadata={
            "help": "How long a batch waits for more requests after each arrival (at most 4 "
            "windows in all)."
        },
    )
    max_batch_size: int = field(
        default=32,
        metadata={"help": "Most requests generated (or audited) as one batch; 1: one at a time."},
    )
    generation: str = field(
        default="packed",
        metadata={
            "help": "How a batch is generated: packed (prompts prefilled in groups of similar "
            "length, each request leaves the batch when its answer ends, mixed `max_tokens` in "
            "one batch); padded (one left-padded batch per `max_tokens`, as `grounded "
            "evaluate`). Both are greedy and give the same answers."
        },
    )
    prefill_max_padding: float = field(
        default=0.1,
        metadata={
            "help": "packed: the share of padded positions a prefill group may carry (0: "
            "equal lengths only; 1: one group)."
        },
    )
    max_tokens: int = field(
        default=256, metadata={"help": "Largest `max_tokens` a request may ask for."}
    )
    max_body_bytes: int = field(
        default=1_048_576,
        metadata={"help": "Largest request body; a larger one gets 413."},
    )
    read_timeout_s: float = field(
        default=30.0,
        metadata={"help": "Seconds a client has to send its request body; slower gets 408."},
    )
    max_pending: int = field(
        default=1024,
        metadata={"help": "Requests waiting for the model at most; beyond, 429 (try later)."},
    )
    api_key_env: str = field(
        default="GROUNDED_API_KEY",
        metadata={
            "help": "Environment variable holding the API key clients must send as "
            "`Authorization: Bearer KEY`; unset or empty: no key is asked."
        },
    )
    device: str = field(
        default="", metadata={"help": "cpu, cuda, ...; default: cuda when available."}
    )
    log_level: str = field(
        default="info", metadata={"help": "uvicorn's log level: warning, info, debug."}
    )

    def __post_init__(self) -> None:
        if self.guard not in GUARD_CHOICES:
            raise ValueError(f"`guard` must be one of {list(GUARD_CHOICES)}, got {self.guard!r}")
        if self.generation not in GENERATION_CHOICES:
            raise ValueError(
                f"`generation` must be one of {list(GENERATION_CHOICES)}, got {self.generation!r}"
            )
        if not (math.isfinite(self.prefill_max_padding) and 0 <= self.prefill_max_padding <= 1):
            raise ValueError(
                f"`prefill_max_padding` must be in [0, 1], got {self.prefill_max_padding}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"`port` must be in 0..65535, got {self.port}")
        for name in ("max_batch_size", "max_tokens", "max_body_bytes", "max_pending"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        for name in ("batch_window_ms", "read_timeout_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"`{name}` must be a finite number >= 0, got {value}")
        if self.read_timeout_s == 0:
            raise ValueError("`read_timeout_s` must be > 0 (seconds a client has to send)")

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach the server."""
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")
