"""Run every benchmark in turn (``make bench``); each writes its own section
of bench/RESULTS.md."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = (
    "bench.demo_load",
    "bench.assignment",
    "bench.ingest",
    "bench.layers",
    "bench.routes",
    "bench.suggest",
)


def main() -> int:
    """Run each benchmark module's ``main`` with its default arguments."""
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", file=sys.stderr, flush=True)
        module = importlib.import_module(name)
        if module.main([]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
