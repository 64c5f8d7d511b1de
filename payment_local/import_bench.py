"""``make bench-imports``: how long each handler module takes to import, against ``import boto3``.

A cold start pays the handler's import before the first event is handled. The target (issue 14)
is that every handler imports in at most 1.5 times what ``import boto3`` alone takes on the
same machine: the ratio carries over to Lambda (a newer Python on arm64) where the absolute
figures do not.

Every measurement is a fresh interpreter that times one ``import`` with ``perf_counter`` (so
the interpreter's own start is not counted, for boto3 or a handler), ``--runs`` times each,
interleaved round by round so that load from elsewhere on the machine falls on both alike; the
median of each is compared. Each handler is imported as Lambda imports it: from ``lambdas/``
(``PYTHONPATH``), with the environment its function has in the synthesized template (values
CloudFormation resolves at deploy time replaced by dummies), Lambda's own variables
(``AWS_LAMBDA_FUNCTION_NAME``, so Powertools knows it is on Lambda) and dummy credentials: an
import that called AWS would fail rather than reach an account. One more run per handler under
``python -X importtime`` names what it spends the time on beyond what ``import boto3`` imports.

Exit status 1 when a handler is over the ratio (so ``make bench`` stops on a regression), 2 on
bad arguments or a missing or stale ``cdk.out``.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payment_local.assembly import PROJECT_ROOT, AssemblyError, check_fresh, load_assembly

HANDLER_PACKAGE = "payment_posting_functions.handlers"
HANDLERS = ("dedup", "enrich", "expiry_sweeper", "posting", "screening_outcomes", "source")
BASELINE = "boto3"
RATIO_LIMIT = 1.5
MIN_RUNS = 7
TOP_CONTRIBUTORS = 8
# Stands for a value CloudFormation fills in at deploy time (a table name, an ARN).
DUMMY = "import-bench-dummy"
# What Lambda itself sets for every function; the region and credentials are never used: an
# import calls no AWS API (tests/unit/test_handler_imports.py checks what it loads).
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_ACCESS_KEY_ID": DUMMY,
    "AWS_SECRET_ACCESS_KEY": DUMMY,
    "AWS_SESSION_TOKEN": DUMMY,
}
# The child prints the milliseconds of the one import and its peak resident memory (KiB).
_TIMED_IMPORT = (
    "import resource, time\n"
    "started = time.perf_counter()\n"
    "import {module}\n"
    "elapsed = (time.perf_counter() - started) * 1000\n"
    "print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


@dataclass(frozen=True)
class Sample:
    """One fresh process: the import's milliseconds and the process's peak RSS in MiB."""

    milliseconds: float
    max_rss_mib: float


@dataclass(frozen=True)
class Verdict:
    """One handler against the baseline: medians, their ratio, and whether it is within it."""

    handler: str
    median_ms: float
    baseline_ms: float
    max_rss_mib: float

    @property
    def ratio(self) -> float:
        return self.median_ms / self.baseline_ms

    @property
    def passed(self) -> bool:
        return self.ratio <= RATIO_LIMIT


def verdict(handler: str, samples: Sequence[Sample], baseline: Sequence[Sample]) -> Verdict:
    return Verdict(
        handler=handler,
        median_ms=statistics.median(s.milliseconds for s in samples),
        baseline_ms=statistics.median(s.milliseconds for s in baseline),
        max_rss_mib=statistics.median(s.max_rss_mib for s in samples),
    )


@dataclass(frozen=True)
class ImportRecord:
    """One line of ``python -X importtime``: a module, its own and cumulative microseconds,
    and how deep it was imported (0: imported by the script itself)."""

    module: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(text: str) -> list[ImportRecord]:
    """The ``import time:`` lines of ``-X importtime`` output, in order (a module after the
    modules it imported); the header and any other line are skipped."""
    records = []
    for line in text.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header: "self [us] | cumulative | imported package"
        name = parts[2].rstrip()
        indent = len(name) - len(name.lstrip(" "))
        records.append(
            ImportRecord(name.strip(), int(parts[0]), int(parts[1]), max(indent - 1, 0) // 2)
        )
    return records


def beyond(records: Sequence[ImportRecord], excluded: set[str]) -> dict[str, int]:
    """Each module's cumulative microseconds without the modules in ``excluded`` (what ``import
    boto3`` imports anyway): its own time and that of everything it imported that is not
    excluded. Output is in postorder, so a module's imports are the deeper lines before it."""
    totals: dict[str, int] = {}
    pending: list[tuple[int, int]] = []  # (depth, microseconds) of modules awaiting a parent
    for record in records:
        own = 0 if record.module in excluded else record.self_us
        while pending and pending[-1][0] > record.depth:
            own += pending.pop()[1]
        totals[record.module] = own
        pending.append((record.depth, own))
    return totals


def top_contributors(
    records: Sequence[ImportRecord], excluded: set[str], root: str, count: int = TOP_CONTRIBUTORS
) -> list[tuple[str, float]]:
    """The ``count`` modules that cost the most beyond ``excluded``, in milliseconds, the
    measured module itself left out (it is the total)."""
    totals = beyond(records, excluded)
    ranked = sorted(
        ((name, us / 1000) for name, us in totals.items() if name != root and us > 0),
        key=lambda item: -item[1],
    )
    return ranked[:count]


def _runs(text: str) -> int:
    try:
        runs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if runs < MIN_RUNS:
        raise argparse.ArgumentTypeError(f"at least {MIN_RUNS} runs, for a median: {runs}")
    return runs


def _handlers(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in HANDLERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown handler {', '.join(repr(n) for n in unknown) or repr(text)}: "
            f"choose from {','.join(HANDLERS)}"
        )
    return list(dict.fromkeys(names))


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m payment_local.import_bench",
        description="Import time of each handler against `import boto3`, in fresh processes.",
    )
    parser.add_argument(
        "--runs", type=_runs, default=MIN_RUNS, help=f"processes per module (>= {MIN_RUNS})"
    )
    parser.add_argument(
        "--handlers",
        type=_handlers,
        default=list(HANDLERS),
        help=f"comma-separated, from {','.join(HANDLERS)} (default: all)",
    )
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    return parser


def handler_module(handler: str) -> str:
    return f"{HANDLER_PACKAGE}.{handler}"


def function_environments(resources: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Each handler's environment in the template, by handler name: literal values as they
    are, what CloudFormation resolves at deploy time (a Ref, a GetAtt) as a dummy."""
    environments: dict[str, dict[str, str]] = {}
    for resource in resources.values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource.get("Properties", {})
        module, _, _ = str(properties.get("Handler", "")).rpartition(".")
        if not module.startswith(f"{HANDLER_PACKAGE}."):
            continue
        variables = properties.get("Environment", {}).get("Variables", {})
        environments[module.rpartition(".")[2]] = {
            name: value if isinstance(value, str) else DUMMY for name, value in variables.items()
        }
    return environments


def child_environment(function_environment: Mapping[str, str], handler: str) -> dict[str, str]:
    """A clean environment (nothing of this shell's AWS or Powertools settings leaks in)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(PROJECT_ROOT / "lambdas"),
        **LAMBDA_ENVIRONMENT,
        # Where Lambda puts the function's code; Powertools takes it to mean "on Lambda".
        "LAMBDA_TASK_ROOT": str(PROJECT_ROOT / "lambdas"),
        "AWS_LAMBDA_FUNCTION_NAME": f"import-bench-{handler}",
        **function_environment,
    }


def _python(module: str, environment: Mapping[str, str], *args: str, stderr: bool = False) -> str:
    """What a fresh interpreter running ``args`` writes to stdout (``stderr``: to stderr, where
    -X importtime writes); a failed import is an ImportFailedError naming the module."""
    # The module is one of HANDLERS or boto3, never user text; this interpreter runs it.
    completed = subprocess.run(  # noqa: S603
        [sys.executable, *args],
        env=dict(environment),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise ImportFailedError(module, completed.stderr)
    return completed.stderr if stderr else completed.stdout


def timed_import(module: str, environment: Mapping[str, str]) -> Sample:
    output = _python(module, environment, "-c", _TIMED_IMPORT.format(module=module))
    milliseconds, max_rss_kib = output.split()
    return Sample(float(milliseconds), int(max_rss_kib) / 1024)


def importtime(module: str, environment: Mapping[str, str]) -> list[ImportRecord]:
    return parse_importtime(
        _python(module, environment, "-X", "importtime", "-c", f"import {module}", stderr=True)
    )


class ImportFailedError(Exception):
    def __init__(self, module: str, stderr: str) -> None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        super().__init__(f"importing {module} failed: {last}")


def interleaved(targets: Mapping[str, Callable[[], Sample]], runs: int) -> dict[str, list[Sample]]:
    """``runs`` rounds, each measuring every target once, the order rotated each round so no
    target is always first (a warmer page cache, a quieter moment)."""
    names = list(targets)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for round_ in range(runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(targets[name]())
    return samples


def table(verdicts: Iterable[Verdict], baseline_ms: float, runs: int) -> str:
    lines = [
        f"import boto3: {baseline_ms:.1f} ms (median of {runs} fresh processes, interleaved)",
        f"{'handler':<20}{'median ms':>10}{'ratio':>8}{'limit':>7}  {'verdict':<8}"
        f"{'max RSS MiB':>12}",
    ]
    for v in verdicts:
        lines.append(
            f"{v.handler:<20}{v.median_ms:>10.1f}{v.ratio:>8.2f}{RATIO_LIMIT:>7.2f}  "
            f"{'PASS' if v.passed else 'FAIL':<8}{v.max_rss_mib:>12.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = parser()
    args = arguments.parse_args(argv)
    try:
        assembly = load_assembly(args.cdk_out)
        check_fresh(assembly)
    except AssemblyError as error:
        arguments.exit(2, f"import_bench: {error}\n")
    environments = function_environments(assembly.resources)
    missing = [name for name in args.handlers if name not in environments]
    if missing:
        arguments.exit(2, f"import_bench: no function in {args.cdk_out} runs {missing}\n")
    children = {name: child_environment(environments[name], name) for name in args.handlers}
    baseline_environment = child_environment({}, BASELINE)
    targets: dict[str, Callable[[], Sample]] = {
        BASELINE: functools.partial(timed_import, BASELINE, baseline_environment)
    }
    for name, environment in children.items():
        targets[name] = functools.partial(timed_import, handler_module(name), environment)
    try:
        for measure in targets.values():
            measure()  # not counted: writes the bytecode caches, warms the page cache
        samples = interleaved(targets, args.runs)
        baseline_modules = {r.module for r in importtime(BASELINE, baseline_environment)}
        trees = {
            name: importtime(handler_module(name), environment)
            for name, environment in children.items()
        }
    except ImportFailedError as error:
        print(f"import_bench: {error}", file=sys.stderr)
        return 2
    verdicts = [verdict(name, samples[name], samples[BASELINE]) for name in args.handlers]
    baseline_ms = statistics.median(s.milliseconds for s in samples[BASELINE])
    print(table(verdicts, baseline_ms, args.runs))
    print(f"\nlargest imports beyond what `import {BASELINE}` loads (-X importtime, one run, ms):")
    for name, records in trees.items():
        module = handler_module(name)
        total = beyond(records, baseline_modules).get(module, 0) / 1000
        print(f"  {name} ({total:.1f} ms beyond boto3's modules in that run):")
        for contributor, milliseconds in top_contributors(records, baseline_modules, module):
            print(f"    {milliseconds:8.1f}  {contributor}")
    over = [v.handler for v in verdicts if not v.passed]
    if over:
        print(f"\nover {RATIO_LIMIT}x import boto3: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
