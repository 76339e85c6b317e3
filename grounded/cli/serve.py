"""``grounded serve``: a trained model behind an OpenAI-compatible HTTP endpoint."""

from __future__ import annotations

import argparse

from grounded.cli.main import UsageError, register_command
from grounded.config import add_dataclass_arguments, build_config, check_yaml_keys, load_yaml

EPILOG = """\
examples:
  grounded serve runs/demo/kb --model runs/demo/models/grounded
  grounded serve runs/demo/kb --model runs/demo/models/grounded --checker runs/demo/checker \\
      --guard revise --port 8000
  GROUNDED_API_KEY=secret grounded serve KB --model MODEL --host 0.0.0.0   # other machines

then:
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model": "grounded",
           "messages": [{"role": "user", "content": "What is the capital of Mongolia?"}]}'
  curl http://127.0.0.1:8000/v1/audit -d '{"text": "The capital of Australia is Sydney."}'

endpoints: POST /v1/chat/completions (OpenAI's, `stream` included; the answer's evidence,
verdict and guard action in `grounding`), POST /v1/audit (`grounded audit`'s JSON),
GET /v1/models, GET /health. The model, KB and checker load once and are checked against
their manifests; SIGTERM or Ctrl-C finishes the requests in flight, then exits.
"""


@register_command("serve")
def register(sub: argparse._SubParsersAction) -> None:
    from grounded.serve.config import ServeConfig

    p = sub.add_parser(
        "serve",
        help="serve a trained model over HTTP (OpenAI-compatible), with the guard and audit",
        description="Answer questions over HTTP as `grounded evaluate` answers them (the "
        "model's retrieval, prompt format and injection, greedy decoding), batching concurrent "
        "requests; optionally verify each answer first (--guard); audit any text.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kb", help="knowledge base folder")
    p.add_argument("--model", required=True, help="trained model folder (`grounded train`)")
    p.add_argument("--checker", help="fact-checker folder: verdicts for the guard and /v1/audit "
                   "beyond what the graph decides")  # fmt: skip
    p.add_argument("--config", help="YAML file with any of the settings below")
    add_dataclass_arguments(p, ServeConfig, "server")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise UsageError(
            f"`grounded serve` needs the server packages ({e.name} is missing): "
            "pip install 'grounded[serve]'"
        ) from None
    from grounded.serve.app import serve
    from grounded.serve.config import ServeConfig
    from grounded.serve.engine import Engine

    yaml_values = load_yaml(args.config) if args.config else {}
    origin = args.config or "--config"
    check_yaml_keys(yaml_values, [ServeConfig], origin)
    config = build_config(ServeConfig, args, yaml_values, origin=origin)
    engine = Engine.load(args.kb, args.model, args.checker, config)
    model = engine.info["model"]
    print(
        f"serving {model['name']!r} ({model['folder']}) on http://{config.host}:{config.port}/v1"
        f" · KB {engine.info['kb']['name']} · guard {config.guard}",
        flush=True,
    )
    serve(engine, config)
    stats = engine.stats
    print(
        f"stopped: {stats['chat']} chat and {stats['audit']} audit requests answered in "
        f"{stats['batches']} batches"
    )
    return 0
