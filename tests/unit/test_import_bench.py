"""``make bench-imports``: its arguments, its arithmetic and its reading of ``-X importtime``,
on made-up timings (the timings themselves are the script's to measure, never a test's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from payment_local import import_bench
from payment_local.import_bench import (
    DUMMY,
    HANDLERS,
    RATIO_LIMIT,
    Sample,
    beyond,
    function_environments,
    interleaved,
    parse_importtime,
    top_contributors,
    verdict,
)

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 | _io
import time:       300 |        300 |       botocore.compat
import time:       200 |        500 |     botocore
import time:      1000 |       1500 |   boto3
import time:      4000 |       4000 |     pydantic_core
import time:       500 |       4500 |   pydantic
import time:       250 |       6250 | payment_posting_functions.handlers.enrich
some other line a module printed on stderr
"""


def samples(*milliseconds: float) -> list[Sample]:
    return [Sample(value, 40.0) for value in milliseconds]


def test_the_median_of_each_side_is_compared() -> None:
    # A slow outlier on either side moves neither median.
    result = verdict(
        "enrich",
        samples(150, 140, 900, 145, 141, 146, 149),
        samples(100, 99, 101, 400, 98, 102, 100),
    )

    assert (result.median_ms, result.baseline_ms) == (146, 100)
    assert result.ratio == pytest.approx(1.46)
    assert result.passed


def test_exactly_the_limit_passes_and_above_it_fails() -> None:
    baseline = samples(*[100.0] * 7)

    assert verdict("posting", samples(*[100 * RATIO_LIMIT] * 7), baseline).passed
    assert not verdict("posting", samples(*[100 * RATIO_LIMIT + 0.1] * 7), baseline).passed


def test_importtime_lines_are_read_with_their_depth() -> None:
    records = parse_importtime(IMPORTTIME)

    assert [(r.module, r.depth, r.self_us, r.cumulative_us) for r in records] == [
        ("_io", 0, 100, 100),
        ("botocore.compat", 3, 300, 300),
        ("botocore", 2, 200, 500),
        ("boto3", 1, 1000, 1500),
        ("pydantic_core", 2, 4000, 4000),
        ("pydantic", 1, 500, 4500),
        ("payment_posting_functions.handlers.enrich", 0, 250, 6250),
    ]


def test_contributors_leave_out_what_boto3_imports_anyway() -> None:
    records = parse_importtime(IMPORTTIME)
    boto3_modules = {"_io", "boto3", "botocore", "botocore.compat"}
    root = "payment_posting_functions.handlers.enrich"

    totals = beyond(records, boto3_modules)
    assert totals[root] == 250 + 500 + 4000  # its own, pydantic's and pydantic_core's
    assert totals["boto3"] == 0
    assert top_contributors(records, boto3_modules, root) == [
        ("pydantic", 4.5),
        ("pydantic_core", 4.0),
    ]
    assert top_contributors(records, boto3_modules, root, count=1) == [("pydantic", 4.5)]


def test_a_template_value_resolved_at_deploy_time_becomes_a_dummy() -> None:
    resources: dict[str, Any] = {
        "Enrich": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "payment_posting_functions.handlers.enrich.handler",
                "Environment": {
                    "Variables": {"ACCOUNTS_TABLE_NAME": {"Ref": "Accounts"}, "HOLD": "60"}
                },
            },
        },
        "Other": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "index.handler"}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
    }

    assert function_environments(resources) == {
        "enrich": {"ACCOUNTS_TABLE_NAME": DUMMY, "HOLD": "60"}
    }


def test_rounds_are_interleaved_and_rotated() -> None:
    order: list[str] = []

    def target(name: str) -> Any:
        def measure() -> Sample:
            order.append(name)
            return Sample(float(len(order)), 1.0)

        return measure

    result = interleaved({name: target(name) for name in ("boto3", "a", "b")}, runs=3)

    assert order == ["boto3", "a", "b", "a", "b", "boto3", "b", "boto3", "a"]
    assert [s.milliseconds for s in result["boto3"]] == [1, 6, 8]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--runs", "6"], "at least 7 runs"),
        (["--runs", "seven"], "not a whole number"),
        (["--handlers", "posting,ledger"], "unknown handler 'ledger'"),
        (["--handlers", ""], "unknown handler"),
        (["--sizes", "100"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_a_usage_message_and_exit_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        import_bench.main(arguments)

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m payment_local.import_bench")
    assert message in err
    assert "Traceback" not in err


def test_defaults_and_a_repeated_handler_measured_once() -> None:
    defaults = import_bench.parser().parse_args([])
    chosen = import_bench.parser().parse_args(
        ["--handlers", "posting, dedup,posting", "--runs", "9"]
    )

    assert (defaults.runs, defaults.handlers) == (7, list(HANDLERS))
    assert (chosen.runs, chosen.handlers) == (9, ["posting", "dedup"])


def test_a_missing_assembly_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        import_bench.main(["--cdk-out", str(tmp_path / "nowhere")])

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("import_bench: ")
    assert "Traceback" not in err
