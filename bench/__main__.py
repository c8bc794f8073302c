"""Benchmark runner: ``python -m bench <name> [args...]``.

Every benchmark is a module ``bench/<name>.py`` exposing ``main(argv: list[str]) -> str`` that
returns a Markdown report (one or more tables). The runner prints it and writes it to
``bench/results/<name>.md`` so results live beside the code that made them.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

import bench

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def available() -> list[str]:
    """Names of the benchmark modules (every module but the runner's own helpers)."""
    skip = {"common", "__main__", "readme"}
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name not in skip)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m bench <name> [args...] | python -m bench readme [--check]\n\nbenchmarks: " + ", ".join(names))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "readme":  # not a benchmark: rewrites README figures from bench/results
        from bench import readme

        return readme.main(rest)
    if name not in names:
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    started = time.perf_counter()
    report = module.main(rest)
    elapsed = time.perf_counter() - started
    command = "python -m bench " + " ".join([name, *rest])
    if report.startswith(f"# bench: {name}\n"):
        # a whole report already (a re-run of some sections spliced into the previous file, which
        # keeps the command and wall time of the run that made the rest)
        text = report.rstrip("\n") + "\n"
    else:
        text = f"# bench: {name}\n\nCommand: `{command}`  \nWall time: {elapsed:.1f} s\n\n{report.strip()}\n"
    print(text)
    results = Path(os.environ.get("AIOPS_BENCH_RESULTS", RESULTS_DIR))  # tests write elsewhere
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.md"
    path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
