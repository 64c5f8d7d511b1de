"""Where a local run's time goes, per hop: a profile of ``run_transactions``, every thread seen.

cProfile sees only the thread it runs in, and moto runs each Step Functions Task state in a
thread of its own (to time it out) while the execution waits for it; here that thread's work
runs inline instead, so the workflow's tasks are counted where they happen. For profiling
only: a Task's ``TimeoutSeconds`` is then not enforced. A warm-up run first, so imports and
cold starts are not counted. Prints the inclusive share of the hops and of moto's and
botocore's machinery, and writes the profile for ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec import execute_state

from payment_local.assembly import check_fresh, load_assembly
from payment_local.pipeline_run import run_transactions
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator

WARM_UP = 50
# What is reported: (label, file the function is in, its name). Shares are inclusive, so
# the machinery rows overlap the hops.
CONTRIBUTORS = (
    ("rules workflow (Step Functions executions)", "moto/stepfunctions/responses.py",
     "start_execution"),
    ("posting function (batches from the posting queue)", "handlers/posting.py", "handler"),
    ("enrichment function", "handlers/enrich.py", "handler"),
    ("screening function (the pipe's enrichment)", "handlers/dedup.py", "handler"),
    ("event log (the runtime's tap queues)", "payment_local/event_log.py", "poll"),
    ("writing the records", "domain/transaction_table.py", "put_all"),
    ("access check decisions", "payment_local/access/authorizer.py", "check"),
    ("  machinery: botocore client calls", "botocore/client.py", "_make_api_call"),
    ("  machinery: moto request handling", "moto/core/botocore_stubber.py", "process_request"),
    ("  machinery: copy.deepcopy", "copy.py", "deepcopy"),
)  # fmt: skip


class _InlineThread:
    """Stands in for ``threading.Thread`` in moto's Task state: runs the target on start."""

    def __init__(self, target: Callable[[], None], daemon: bool = True) -> None:
        self._target = target

    def start(self) -> None:
        self._target()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=200, help="transactions profiled")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--access", choices=("on", "off"), default="on")
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--output", type=Path, default=Path("reports") / "bench.prof")
    args = parser.parse_args(argv)
    assembly = load_assembly(args.cdk_out)
    check_fresh(assembly)
    records = list(
        TransactionGenerator(knobs=Knobs(), seed=args.seed).generate(WARM_UP + args.size)
    )
    module: Any = execute_state
    module.Thread = _InlineThread
    profile = cProfile.Profile()
    with LocalRuntime(
        assembly, function_log=io.StringIO(), enforce_access=args.access == "on"
    ) as runtime:
        run_transactions(runtime, records[:WARM_UP], decide_reviews=False, expire_holds=False)
        profile.enable()
        run_transactions(runtime, records[WARM_UP:], decide_reviews=False, expire_holds=False)
        profile.disable()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    profile.dump_stats(str(args.output))
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = max(row[3] for (_, _, name), row in stats.items() if name == "run_transactions")
    print(f"{args.size} transactions: {total:.1f} s profiled, "
          f"{total / args.size * 1000:.0f} ms each (cProfile slows it about twice)")  # fmt: skip
    for label, filename, function in CONTRIBUTORS:
        seconds = sum(
            row[3]
            for (file, _, name), row in stats.items()
            if file.endswith(filename) and name == function
        )
        print(f"{seconds / total * 100:5.1f} %  {seconds:6.2f} s  {label}")
    print(f"profile written to {args.output} (python -m pstats {args.output})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
