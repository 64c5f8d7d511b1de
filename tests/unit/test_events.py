from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from payment_posting_functions.domain.events import (
    CATALOGUE,
    SCHEMA_VERSION,
    EventName,
    EventSource,
    Screening,
    TransactionAuthorized,
    render_catalogue,
)
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from tests.factories import valid_item

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "events.md"
# Where the catalogue's names must be imported (or substituted), never written out.
# Where the catalogue's names are imported, never written out: the constructs, the local
# runtime and its report, the States Language files and the function handlers.
NAMES_IMPORTED_IN = (
    "payment_stack",
    "payment_local",
    "statemachine",
    "lambdas/payment_posting_functions/handlers",
)


def test_detail_is_camel_case_json_with_the_envelope() -> None:
    event = TransactionAuthorized(
        transaction_id="tx-00000001",
        occurred_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        screening=Screening(valid=True, fingerprint="v1:abc"),
        transaction=AuthorizedTransaction.model_validate(valid_item()),
    )
    detail = event.to_detail()
    assert detail["name"] == "TransactionAuthorized"
    assert detail["source"] == "payments.ingest"
    assert detail["schemaVersion"] == SCHEMA_VERSION
    assert detail["transactionId"] == "tx-00000001"
    assert detail["occurredAt"] == "2026-11-24T12:00:00Z"
    assert detail["transaction"]["transactionAmount"] == {"amount": 1250, "currency": "USD"}
    assert detail["transaction"]["conversionRate"] == "0.92150000"  # a string: exact
    assert TransactionAuthorized.model_validate(detail) == event


def test_every_event_name_has_a_catalogue_entry() -> None:
    assert {event.NAME for event in CATALOGUE} == set(EventName)


def test_docs_event_catalogue_is_current() -> None:
    # Regenerate with `make events-doc` when an event model changes.
    assert DOCS.read_text() == render_catalogue() + "\n"


def test_the_constructs_name_every_source_of_the_catalogue_and_no_other() -> None:
    # payment_stack names the sources its grants use, one constant per processor: a source
    # added to the catalogue without one (or a constant for a source the catalogue lacks)
    # would leave a processor without a grant of its own.
    from payment_stack import event_sources

    constants = {
        name: value for name, value in vars(event_sources).items() if name.endswith("_SOURCE")
    }
    assert sorted(constants.values()) == sorted(source.value for source in EventSource)
    # Plain strings: jsii would take an enum member for one of its own enums.
    assert all(type(value) is str for value in constants.values()), constants


def _catalogue_names() -> set[str]:
    return {name.value for name in EventName} | {source.value for source in EventSource}


def _strings(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from _strings(value)
    elif isinstance(document, list):
        for item in document:
            yield from _strings(item)
    elif isinstance(document, str):
        yield document


def _written_out(path: Path) -> set[str]:
    """The catalogue's names that ``path`` holds as a whole string literal (Python) or string
    (JSON): a name in a docstring or a comment's prose is not one."""
    if path.suffix == ".json":
        strings = set(_strings(json.loads(path.read_text())))
    else:
        tree = ast.parse(path.read_text(), filename=str(path))
        strings = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
    return strings & _catalogue_names()


def _checked_files() -> list[Path]:
    return sorted(
        path
        for folder in NAMES_IMPORTED_IN
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".json") and path.is_file()
    )


def test_the_stack_the_runtime_and_the_rules_import_the_catalogues_names() -> None:
    # Written out, a name can drift from the catalogue (a rename, a typo) and an event goes
    # unmatched; imported (or, in a States Language file, substituted by RulesEngine from the
    # same enums), it cannot.
    found = {}
    for path in _checked_files():
        relative = path.relative_to(ROOT).as_posix()
        extra = _written_out(path)
        if extra:
            found[relative] = sorted(extra)
    assert found == {}, (
        "use payment_posting_functions.domain.event_names (EventName, EventSource) instead of "
        f"writing these names out (a States Language file: ${{Name}}): {found}"
    )


def test_the_literal_check_finds_a_name_written_out(tmp_path: Path) -> None:
    # The check above passes on an empty list too: show it finds what it looks for.
    module = tmp_path / "module.py"
    module.write_text('"""TransactionApproved in prose."""\nSOURCE = "payments.rules"\n')
    definition = tmp_path / "rules.asl.json"
    definition.write_text(json.dumps({"States": {"P": {"Result": "TransactionHeld"}}}))
    assert _written_out(module) == {"payments.rules"}
    assert _written_out(definition) == {"TransactionHeld"}
    assert len(_checked_files()) > 30
