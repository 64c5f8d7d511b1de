"""``make bench``'s script refuses bad arguments and a stale or missing cdk.out clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from payment_local.bench import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "100,lots"], "not a comma-separated list of counts: '100,lots'"),
        (["--sizes", "0"], "every size must be at least 1: '0'"),
    ],
)
def test_a_bad_size_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_cdk_out_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--cdk-out", str(tmp_path / "nowhere"), "--sizes", "1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("bench: ")
