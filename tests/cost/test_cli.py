"""``python -m payment_cost``: a clear message and exit status 2 for what a user can fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payment_cost.cli import main
from tests.cost.small_stack import template


@pytest.fixture
def assembly(tmp_path: Path) -> Path:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "Small.template.json").write_text(json.dumps(template()))
    manifest = {
        "artifacts": {
            "Small": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "Small.template.json"},
            }
        }
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state"
    state.mkdir()
    events = [
        {
            "seenAt": 0,
            "bus": "b",
            "source": "payments.ingest",
            "detailType": "TransactionAuthorized",
            "detail": {"transactionId": str(i)},
        }
        for i in range(4)
    ] + [
        {
            "seenAt": 0,
            "bus": "b",
            "source": "payments.rules",
            "detailType": "TransactionApproved",
            "detail": {"transactionId": str(i)},
        }
        for i in range(3)
    ]
    (state / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    report = tmp_path / "report.json"
    report.write_text(
        json.dumps(
            {
                "transactions": {"written": 4},
                "finalStates": {"posted": 3, "rejected INVALID_AMOUNT": 1},
                "functions": {},
            }
        )
    )
    return state, report


def args(assembly: Path, run: tuple[Path, Path], *more: str) -> list[str]:
    return ["--cdk-out", str(assembly), "--state", str(run[0]), "--report", str(run[1]), *more]


def test_prints_the_blocks_and_writes_json(
    assembly: Path, run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cost" / "report.json"
    assert main(args(assembly, run, "--json", str(out), "--volume", "1000000")) == 0
    printed = capsys.readouterr().out
    assert "The pipeline, up to the posting call: $" in printed
    assert "The built-in ledger" in printed
    data = json.loads(out.read_text())
    assert data["volume"] == 1_000_000
    # 1.75 events per record at $1 a million: $1.75 of the pipeline's per million.
    events = next(i for i in data["lineItems"] if i["item"] == "events put on the bus")
    assert events["perMillion"] == pytest.approx(1.75)
    table = data["perMillionRecords"]["pipelineOfWhichTransactionsTable"]
    # The source's write (1 write unit) and the stream's reads, at least.
    assert 0.625 < table < data["perMillionRecords"]["pipeline"]
    assert data["guidance"]["ratioToThisPipeline"] > 0
    assert data["guidance"]["quotedPerMillion"] == pytest.approx(90.56, abs=0.01)
    assert data["leaner"]["givesUp"]
    assert "The guidance's design, modelled the same way" in printed
    assert "Option (modelled, not built): the leaner topology" in printed
    assert data["perMillionRecords"]["pipeline"] == pytest.approx(
        sum(i["perMillion"] for i in data["lineItems"] if i["block"] == "pipeline"), abs=0.01
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--region", "mars-1"], "no price table for region 'mars-1'"),
        (["--volume", "many"], "volume must be a whole number"),
        (["--volume", "0"], "volume must be positive"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    assembly: Path,
    run: tuple[Path, Path],
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(args(assembly, run, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_no_cloud_assembly_says_to_synthesize(
    tmp_path: Path, run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(tmp_path / "nothing", run)) == 2
    assert "run `make synth`" in capsys.readouterr().err


def test_no_run_says_to_run_the_demo(
    assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = (tmp_path / "no-state", tmp_path / "no-report.json")
    assert main(args(assembly, missing)) == 2
    assert "run `make demo` first" in capsys.readouterr().err
