"""A local function's output: routed to its own log, filtered by its level as Lambda does."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from payment_local.function_logs import application_log_level, function_output, kept, level_rank
from payment_posting_functions.domain.log_redaction import payment_logger


def line(level: str, message: str = "m") -> str:
    return json.dumps({"level": level, "message": message})


@pytest.mark.parametrize(
    ("config", "level"),
    [
        (None, "TRACE"),  # text logs: Lambda filters nothing
        ({"LogFormat": "Text"}, "TRACE"),
        ({"LogFormat": "JSON"}, "INFO"),  # Lambda's default for JSON logs
        ({"LogFormat": "JSON", "ApplicationLogLevel": "WARN"}, "WARN"),
    ],
)
def test_the_level_a_logging_config_keeps(config: dict[str, str] | None, level: str) -> None:
    assert application_log_level(config) == level


def test_json_lines_below_the_level_are_dropped_and_the_rest_kept() -> None:
    warn = level_rank("WARN")
    assert not kept(line("INFO"), warn)
    assert not kept(line("DEBUG"), warn)
    assert kept(line("WARNING"), warn)  # Python's name, as Powertools writes it
    assert kept(line("ERROR"), warn)
    assert kept(line("CRITICAL"), warn)
    # Lambda gives a line without a (known) level the level INFO: at WARN it is dropped.
    assert not kept("a plain print", warn)
    assert not kept("{not json", warn)
    assert not kept(json.dumps({"_aws": {"CloudWatchMetrics": []}, "Latency": 5}), warn)
    assert not kept(json.dumps({"log_level": "ERROR", "errorMessage": "boom"}), warn)
    assert not kept(line("LOUD"), warn)
    info = level_rank("INFO")
    assert kept("a plain print", info)
    assert kept(json.dumps({"_aws": {"CloudWatchMetrics": []}, "Latency": 5}), info)
    assert not kept(line("DEBUG"), info)


def test_an_unknown_level_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        level_rank("LOUD")


def test_output_goes_to_the_running_functions_log_at_its_level() -> None:
    quiet, chatty = io.StringIO(), io.StringIO()
    with function_output(quiet, "WARN"):
        print(line("INFO", "dropped"))
        sys.stdout.write(line("WARNING", "kept") + "\n")
    with function_output(chatty, "INFO"):
        print(line("INFO", "kept too"))

    assert [json.loads(x)["message"] for x in quiet.getvalue().splitlines()] == ["kept"]
    assert [json.loads(x)["message"] for x in chatty.getvalue().splitlines()] == ["kept too"]


def test_a_logger_bound_to_standard_output_once_reaches_each_later_log() -> None:
    # Powertools binds its handler's stream when a handler module is first imported: inside
    # the first invocation. Every later invocation (another runtime's log too) must get its
    # own lines, not the first log.
    logger = logging.getLogger("tests.function_logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    first, second = io.StringIO(), io.StringIO()
    try:
        with function_output(first, "INFO"):
            logger.addHandler(logging.StreamHandler(sys.stdout))
            logger.info(line("INFO", "first"))
        with function_output(second, "INFO"):
            logger.info(line("INFO", "second"))
    finally:
        logger.handlers.clear()

    assert "first" in first.getvalue()
    assert "second" not in first.getvalue()
    assert "second" in second.getvalue()


def test_a_last_line_without_a_newline_is_still_written() -> None:
    log = io.StringIO()
    with function_output(log, "INFO"):
        sys.stdout.write("partial")
    assert log.getvalue() == "partial"


def test_a_payment_logger_made_before_any_function_runs_reaches_each_functions_log() -> None:
    # What broke in CI: a unit test imported a handler first, outside any invocation, and its
    # logger kept writing to the test's standard output instead of each function's log.
    logger = payment_logger(service="tests.function_logs.early")
    first, second = io.StringIO(), io.StringIO()
    with function_output(first, "INFO"):
        logger.info("first")
    with function_output(second, "WARN"):
        logger.info("dropped at WARN")
        logger.warning("second")

    assert [json.loads(x)["message"] for x in first.getvalue().splitlines()] == ["first"]
    assert [json.loads(x)["message"] for x in second.getvalue().splitlines()] == ["second"]
