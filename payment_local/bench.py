"""``make bench``: local throughput and latency at a few sizes, as a table.

Each size runs on a fresh runtime (fresh moto), with the demo's generator and seed, fed as the
demo feeds (at the rate the pipeline drains: ``pipeline_run.in_flight_window``), once with the
access check (IAM, resource and key policies) on and once off, so the table shows what the
check costs per transaction. Not a test: numbers depend on the machine; the target (50
transactions a second end to end on 2 cores) is checked by reading the table.

Wall-clock figures depend on what else the machine runs; ``cpuMs`` (this process's CPU time
per transaction over the same span, every thread counted) does much less, so compare runs on
a busy machine by it.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
from pathlib import Path
from typing import Any

from payment_local.assembly import AssemblyError, check_fresh, load_assembly
from payment_local.pipeline_run import run_transactions
from payment_local.report import build_report
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator

TARGET_PER_SECOND = 50.0


def _sizes(text: str) -> list[int]:
    """``100,300``: whole numbers of transactions, at least 1 each."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of counts: {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"every size must be at least 1: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", type=_sizes, default="100,300,1000,2000", help="comma-separated run sizes"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--output", type=Path, default=Path("reports") / "bench.json")
    args = parser.parse_args(argv)
    try:
        assembly = load_assembly(args.cdk_out)
        check_fresh(assembly)
    except AssemblyError as error:
        parser.exit(2, f"bench: {error}\n")

    rows = []
    for size in args.sizes:
        records = list(TransactionGenerator(knobs=Knobs(), seed=args.seed).generate(size))
        for enforce in (True, False):
            with LocalRuntime(
                assembly, function_log=io.StringIO(), enforce_access=enforce
            ) as runtime:
                result = run_transactions(runtime, records)
                report = build_report(runtime, result, {"count": size, "seed": args.seed}).data
            rows.append(
                {
                    "transactions": size,
                    "access": "on" if enforce else "off",
                    "accounted": report["transactions"]["accounted"],
                    "denials": len(report["access"]["denials"]),
                    "checks": report["access"]["checks"],
                    "checkSeconds": report["access"]["seconds"],
                    "seconds": report["elapsedSeconds"],
                    "perSecond": report["throughputPerSecond"],
                    "p50Ms": report["latencyMs"]["p50"],
                    "p95Ms": report["latencyMs"]["p95"],
                    "cpuMs": round(result.cpu_seconds / size * 1000, 1),
                    "mostInFlight": result.most_in_flight,
                    "peakMemoryMb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    ),
                }
            )
            print(_table(rows[-1:], header=len(rows) == 1), flush=True)
        on, off = rows[-2], rows[-1]
        print(f"{'':>12} access check: {on['checks'] / size:.1f} checks, "
              f"{on['checkSeconds'] / size * 1000:.2f} ms deciding per transaction "
              f"(wall clock on - off: {(on['seconds'] - off['seconds']) / size * 1000:+.1f} ms)",
              flush=True)  # fmt: skip

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "cpus": _cpus()},
                "stack": assembly.stack_name,
                "targetPerSecond": TARGET_PER_SECOND,
                "runs": rows,
            },
            indent=2,
        )
        + "\n"
    )
    slowest = min(row["perSecond"] for row in rows if row["access"] == "on")
    verdict = "meets" if slowest >= TARGET_PER_SECOND else "MISSES"
    print(f"\nslowest run {slowest:.1f}/s {verdict} the {TARGET_PER_SECOND:.0f}/s target; "
          f"written to {args.output}")  # fmt: skip
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _table(rows: list[dict[str, Any]], header: bool) -> str:
    columns = [
        ("transactions", "{:>12}"),
        ("access", "{:>6}"),
        ("accounted", "{:>9}"),
        ("checks", "{:>7}"),
        ("seconds", "{:>8.2f}"),
        ("perSecond", "{:>9.1f}"),
        ("p50Ms", "{:>7.0f}"),
        ("p95Ms", "{:>7.0f}"),
        ("cpuMs", "{:>6.1f}"),
        ("mostInFlight", "{:>12}"),
        ("peakMemoryMb", "{:>12}"),
    ]
    lines = []
    if header:
        lines.append(" ".join(f"{name:>{len(fmt.format(0 if name != 'access' else ''))}}"
                              for name, fmt in columns))  # fmt: skip
    for row in rows:
        lines.append(" ".join(fmt.format(row[name]) for name, fmt in columns))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
