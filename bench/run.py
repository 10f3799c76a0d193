"""Measures imagecore against its limits and writes docs/bench/results.{json,md} and plots.

    .venv/bin/pip install '.[bench]'          # once: matplotlib and the dev tools it drives
    .venv/bin/python -m bench --quick         # small sizes, a few minutes
    .venv/bin/python -m bench                 # the full sizes (10^6 images in SQLite, ...)
    .venv/bin/python -m bench --only 1,5      # some row families
    .venv/bin/python -m bench --only 1,3 --rounds 5   # reads and transfers, 5 rounds each

Not part of the test suite. Uses wrk and nginx (Debian's packages, installed when missing and
root; else the row says why it was skipped) and curl.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

from bench import (
    http_reads,
    lambda_api,
    list_scaling,
    partitions,
    report,
    resumable,
    slow_bodies,
    transfer,
)
from bench.common import REPOSITORY_ROOT, Row, ensure_tool, skipped

FAMILIES: dict[str, tuple[str, Callable[[bool, int | None], list[Row]]]] = {
    # Rows 1 and 3 compare sides measured in turns: ``rounds`` (None: the family's own count).
    "1": (http_reads.FAMILY, http_reads.run),
    "2": (list_scaling.FAMILY, lambda quick, rounds: list_scaling.run(quick)),
    "3": (transfer.FAMILY_THROUGHPUT, transfer.run),  # also row 4, memory
    "5": (lambda_api.FAMILY, lambda quick, rounds: lambda_api.run(quick)),
    "6": (slow_bodies.FAMILY, lambda quick, rounds: slow_bodies.run(quick)),
    "7": (resumable.FAMILY, resumable.run),  # rounds: the 1 GiB upload against the disk copy
    # A model, not a measurement of a server: the write and read mix against DynamoDB's
    # per-partition limits (docs/capacity.md).
    "8": (partitions.FAMILY, lambda quick, rounds: partitions.run(quick)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", default=",".join(FAMILIES), help="row families, e.g. 1,3")
    parser.add_argument(
        "--rounds", type=int, help="rounds of the compared sides in rows 1 and 3 (default 3-9)"
    )
    args = parser.parse_args()
    for path in (REPOSITORY_ROOT / "src", REPOSITORY_ROOT):
        sys.path.insert(0, str(path))  # the tests' helpers (server, moto, events) are reused
    families = [key.strip() for key in args.only.split(",")]
    if "1" in families:
        ensure_tool("wrk", "wrk")  # else row 1 falls back to the Python load generator
    rows: list[Row] = []
    for key in families:
        name, measure = FAMILIES[key]
        print(f"measuring {name} ...", flush=True)
        started = time.monotonic()
        try:
            rows += measure(args.quick, args.rounds)
        except Exception as exc:  # one family failing still leaves the others' figures
            traceback.print_exc()
            rows.append(skipped(name, "(failed)", f"{type(exc).__name__}: {exc}"[:200]))
        print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    mode = "quick" if args.quick else "full"
    print()
    print(report.table(rows))
    out = REPOSITORY_ROOT / "docs" / "bench"
    report.write(rows, out, mode)
    print(f"\nwrote {out}/results.json, results.md and *.png")


if __name__ == "__main__":
    main()
