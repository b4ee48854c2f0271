"""Run every benchmark once, each in its own process, after a header naming the machine.

    python -m bench.run_all [lifecycle history api_latency contention]   (make bench)

Each benchmark starts its own servers and throwaway databases and prints its own table with ratios
against a baseline measured in the same run; see each module's docstring for how to read it. With
the defaults the whole run takes about 1.5 minutes on a 2-core machine. Needs PostgreSQL at
ORDERFLOW_BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
The exit code is non-zero when any benchmark failed (contention fails when anything was oversold).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench import harness

BENCHMARKS = ("lifecycle", "history", "api_latency", "contention")
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the orderflow benchmarks.")
    known = ", ".join(BENCHMARKS)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {known} (default: all)")
    names = parser.parse_args().names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {known}")
    print("orderflow benchmarks")
    harness.print_machine()
    failed: list[str] = []
    for name in names:
        print(f"\n== bench.{name} ==", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=ROOT)
        print(f"(bench.{name}: {time.perf_counter() - started:.0f} s, exit code {code})", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
