"""The benchmark scripts under ``bench/`` still import against the package.

A bench is run by hand, rarely, so an API move (a class changing rooms) would otherwise break
it silently; importing each script module and asking for its ``--help`` catches that.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py"))


def test_bench_folder_has_scripts() -> None:
    assert {"bench_factcheck", "freetext"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_bench_module_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    importlib.import_module(name)


def test_bench_factcheck_help() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_factcheck.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "--part" in out.stdout
