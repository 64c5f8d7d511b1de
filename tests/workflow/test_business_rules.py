"""Every branch of the business-rules workflow, run on moto's States Language interpreter.

One case per branch: the events the workflow puts on the bus (in order), each checked against
the event catalogue, and the notifications it sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import pytest

from payment_posting_functions.domain.accounts import Account, sample_accounts
from payment_posting_functions.domain.events import (
    BY_NAME,
    SCHEMA_VERSION,
    EventName,
    EventSource,
    ForeignTransactionFound,
    MerchantCategoryWarning,
    TransactionHeld,
    TransactionRejected,
)
from tests.factories import valid_item
from tests.workflow.conftest import BUS, REGION, Execution, RulesWorkflow, enriched_event

ACCOUNTS: dict[str, Account] = {account.account_id: account for account in sample_accounts()}
TOKEN = valid_item()["panToken"]
APPROVED = EventName.TRANSACTION_APPROVED
REJECTED = EventName.TRANSACTION_REJECTED
HELD = EventName.TRANSACTION_HELD
FOREIGN = EventName.FOREIGN_TRANSACTION_FOUND
WATCHED = EventName.MERCHANT_CATEGORY_WARNING
INQUIRY = EventName.INQUIRY_COMPLETED
OUTCOMES = {APPROVED, REJECTED, HELD, INQUIRY}

# A domestic transaction: paid and billed in euros, at rate 1, by a German card in Germany.
DOMESTIC: dict[str, Any] = {
    "transactionAmount": {"amount": 4200, "currency": "EUR"},
    "billingAmount": {"amount": 4200, "currency": "EUR"},
    "conversionRate": "1",
    "acquirerCountry": "DE",
}


ORIGINAL = {"mti": "0100", "stan": "123456", "transmittedAt": "2026-11-24T10:15:30+00:00",
            "rrn": "123456789012", "authCode": "A1B2C3"}  # fmt: skip


def eur(amount: int) -> dict[str, Any]:
    """A domestic transaction of ``amount`` cents."""
    return {
        **DOMESTIC,
        "transactionAmount": {"amount": amount, "currency": "EUR"},
        "billingAmount": {"amount": amount, "currency": "EUR"},
    }


@dataclass(frozen=True)
class Case:
    """An input and what the workflow must make of it."""

    overrides: dict[str, Any]
    expected: list[str]  # detail-types on the bus, in order
    account_id: str | None = "ACC-0001"
    reason_code: str | None = None  # of TransactionRejected
    hold_reasons: list[str] = field(default_factory=list)  # of TransactionHeld
    drop_issuer_country: bool = False  # remove the key rather than send null
    account_currency: str | None = None  # the account's, if not its own (EUR)
    drop_account_currency: bool = False  # an enrichment without the field at all


CASES = {
    "plain domestic": Case(DOMESTIC, [APPROVED]),
    "cash (01) is no inquiry": Case({**DOMESTIC, "processingCode": "010000"}, [APPROVED]),
    "issuer country null": Case(
        {**DOMESTIC, "issuerCountry": None},
        [REJECTED],
        account_id=None,  # an unknown account too: rejection wins over suspense
        reason_code="MISSING_ISSUER_COUNTRY",
    ),
    "issuer country absent": Case(
        DOMESTIC,
        [REJECTED],
        reason_code="MISSING_ISSUER_COUNTRY",
        drop_issuer_country=True,
    ),
    "zero transaction amount": Case(
        {**DOMESTIC, "transactionAmount": {"amount": 0, "currency": "EUR"}},
        [REJECTED],
        reason_code="INVALID_AMOUNT",
    ),
    "zero billing amount (checked before the FX rule)": Case(
        {"billingAmount": {"amount": 0, "currency": "EUR"}},
        [REJECTED],
        reason_code="INVALID_AMOUNT",
    ),
    "billing amount 10% off the rate": Case(
        # 12.50 USD at 0.9215 is 11.52 EUR; 12.67 EUR is 998 bps off.
        {"billingAmount": {"amount": 1267, "currency": "EUR"}},
        [REJECTED],
        reason_code="FX_MISMATCH",
    ),
    "FX deviation just over the maximum (301 bps)": Case(
        {
            **DOMESTIC,
            "billingAmount": {"amount": 10_301, "currency": "EUR"},
            "transactionAmount": {"amount": 10_000, "currency": "EUR"},
        },
        [REJECTED],
        reason_code="FX_MISMATCH",
    ),
    "FX deviation at the maximum (300 bps) passes": Case(
        {
            **DOMESTIC,
            "billingAmount": {"amount": 10_300, "currency": "EUR"},
            "transactionAmount": {"amount": 10_000, "currency": "EUR"},
        },
        [APPROVED],
    ),
    "billing currency not the account's": Case(
        DOMESTIC, [REJECTED], account_currency="USD", reason_code="CURRENCY_MISMATCH"
    ),
    "billing currency the account's, which is not EUR": Case(
        {
            **DOMESTIC,
            "transactionAmount": {"amount": 4200, "currency": "USD"},
            "billingAmount": {"amount": 4200, "currency": "USD"},
        },
        [APPROVED],
        account_currency="USD",
    ),
    "unknown account: no currency to check (null)": Case(
        {
            **DOMESTIC,
            "transactionAmount": {"amount": 4200, "currency": "USD"},
            "billingAmount": {"amount": 4200, "currency": "USD"},
        },
        [APPROVED],
        account_id=None,
    ),
    "no account currency in the enrichment: not checked": Case(
        DOMESTIC, [APPROVED], account_currency="USD", drop_account_currency=True
    ),
    "balance inquiry (31) of nothing": Case(
        {
            **DOMESTIC,
            "processingCode": "310000",
            "transactionAmount": {"amount": 0, "currency": "EUR"},
            "billingAmount": {"amount": 0, "currency": "EUR"},
        },
        [INQUIRY],
    ),
    "available-funds inquiry (30): no side event, hold or currency check": Case(
        # Foreign, a watched MCC, over the threshold, on an account with holds in another
        # currency, and off the rate: a payment would be rejected; an inquiry moves nothing.
        {
            "processingCode": "300000",
            "mcc": "7995",
            "transactionAmount": {"amount": 2_170_375, "currency": "USD"},
            "billingAmount": {"amount": 9_999_999, "currency": "EUR"},
        },
        [INQUIRY],
        account_id="ACC-0010",
        account_currency="GBP",
    ),
    "inquiry for an unknown account": Case(
        {**DOMESTIC, "processingCode": "300000"}, [INQUIRY], account_id=None
    ),
    "inquiry without an issuer country is rejected (checked first)": Case(
        {**DOMESTIC, "processingCode": "310000", "issuerCountry": None},
        [REJECTED],
        reason_code="MISSING_ISSUER_COUNTRY",
    ),
    "a refund (20) is no inquiry": Case(
        {**DOMESTIC, "processingCode": "200000", "billingAmount": {"amount": 0, "currency": "EUR"}},
        [REJECTED],
        reason_code="INVALID_AMOUNT",
    ),
    "foreign (USD billed in EUR)": Case({}, [FOREIGN, APPROVED]),
    "watched MCC 7995": Case({**DOMESTIC, "mcc": "7995"}, [WATCHED, APPROVED]),
    "watched MCC 4829 (last of the list)": Case({**DOMESTIC, "mcc": "4829"}, [WATCHED, APPROVED]),
    "high value": Case(eur(1_000_001), [HELD], hold_reasons=["HIGH_VALUE"]),
    "at the high-value threshold passes": Case(eur(1_000_000), [APPROVED]),
    "account with holds": Case(
        DOMESTIC, [HELD], account_id="ACC-0010", hold_reasons=["ACCOUNT_HOLD"]
    ),
    "high value on an account with holds names both reasons": Case(
        eur(1_000_001),
        [HELD],
        account_id="ACC-0010",
        hold_reasons=["HIGH_VALUE", "ACCOUNT_HOLD"],
    ),
    "a clearing over the threshold on an account with holds is not held": Case(
        {**eur(1_000_001), "mti": "1240"}, [APPROVED], account_id="ACC-0010"
    ),
    "a reversal is not held": Case(
        {**eur(1_000_001), "mti": "0420", "original": ORIGINAL}, [APPROVED], account_id="ACC-0010"
    ),
    "a refund is not held": Case(
        {**eur(1_000_001), "processingCode": "200000"}, [APPROVED], account_id="ACC-0010"
    ),
    "an authorization advice is held like its request": Case(
        {**eur(1_000_001), "mti": "0120"}, [HELD], hold_reasons=["HIGH_VALUE"]
    ),
    "foreign, watched MCC and high value": Case(
        # 2,170,375 USD cents at 0.9215 is 2,000,000.56 EUR cents.
        {
            "mcc": "7995",
            "transactionAmount": {"amount": 2_170_375, "currency": "USD"},
            "billingAmount": {"amount": 2_000_001, "currency": "EUR"},
        },
        [FOREIGN, WATCHED, HELD],
        hold_reasons=["HIGH_VALUE"],
    ),
}


def build_input(case: Case) -> dict[str, Any]:
    account = ACCOUNTS[case.account_id] if case.account_id else None
    if account is not None and case.account_currency is not None:
        account = account.model_copy(update={"currency": case.account_currency})
    event = enriched_event(account, **case.overrides)
    if case.drop_issuer_country:
        del event["detail"]["transaction"]["issuerCountry"]
    if case.drop_account_currency:
        del event["detail"]["enrichment"]["accountCurrency"]
    return event


def assert_catalogued(event: dict[str, Any], transaction_id: str) -> None:
    """The event is exactly what the catalogue says: every field set, nothing more."""
    name = event["detail-type"]
    model = BY_NAME[name]
    detail = event["detail"]
    assert event["source"] == EventSource.RULES
    model.model_validate(detail)  # extra fields are forbidden
    assert set(detail) == {f.alias or n for n, f in model.model_fields.items()}, name
    assert detail["name"] == name
    assert detail["source"] == EventSource.RULES
    assert detail["schemaVersion"] == SCHEMA_VERSION == "1.0"
    assert detail["transactionId"] == transaction_id


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_branch_publishes_what_the_catalogue_says(rules: RulesWorkflow, case: Case) -> None:
    given = build_input(case)["detail"]
    execution = rules.run(build_input(case))

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert [e["detail-type"] for e in execution.events] == case.expected
    for event in execution.events:
        assert_catalogued(event, given["transactionId"])
    outcome = execution.events[-1]["detail"]
    assert [e["detail-type"] for e in execution.events if e["detail-type"] in OUTCOMES] == [
        execution.events[-1]["detail-type"]
    ]
    assert outcome["transaction"] == given["transaction"]
    assert outcome["enrichment"] == given["enrichment"]

    if case.reason_code:
        rejected = TransactionRejected.model_validate(outcome)
        assert rejected.reason_code == case.reason_code
        assert rejected.reason
        assert_rejection_notified(execution, given["transactionId"], case.reason_code)
    else:
        assert execution.notifications == []
    if case.hold_reasons:
        assert TransactionHeld.model_validate(outcome).reasons == case.hold_reasons


def assert_rejection_notified(execution: Execution, transaction_id: str, code: str) -> None:
    [notification] = execution.notifications
    assert notification["Subject"] == "Transaction rejected by a validation rule"
    message = json.loads(notification["Message"])
    assert message["transactionId"] == transaction_id
    assert message["reasonCode"] == code
    assert TOKEN not in json.dumps(notification)


def test_a_foreign_transaction_is_reported_with_its_conversion(rules: RulesWorkflow) -> None:
    given = build_input(CASES["foreign (USD billed in EUR)"])["detail"]
    execution = rules.run(build_input(CASES["foreign (USD billed in EUR)"]))

    found = ForeignTransactionFound.model_validate(execution.events[0]["detail"])
    assert found.conversion_rate == Decimal("0.9215")
    assert found.transaction_amount.model_dump() == {"amount": 1250, "currency": "USD"}
    assert found.billing_amount.model_dump() == {"amount": 1152, "currency": "EUR"}
    assert found.fx.model_dump(by_alias=True) == given["enrichment"]["fx"]
    assert found.fx.expected_billing_amount == 1152


def test_a_watched_merchant_category_is_reported(rules: RulesWorkflow) -> None:
    execution = rules.run(build_input(CASES["watched MCC 7995"]))

    warning = MerchantCategoryWarning.model_validate(execution.events[0]["detail"])
    assert (warning.mcc, warning.merchant_id) == ("7995", valid_item()["merchantId"])


def test_branches_stay_apart_when_executions_share_one_parsed_program(
    rules: RulesWorkflow,
) -> None:
    """moto_internals reuses one parsed program for every execution: interleave branches."""
    order = [
        "high value",
        "plain domestic",
        "billing amount 10% off the rate",
        "account with holds",
        "foreign, watched MCC and high value",
        "plain domestic",
    ]
    outcomes = [
        [e["detail-type"] for e in rules.run(build_input(CASES[name])).events] for name in order
    ]
    assert outcomes == [CASES[name].expected for name in order]


FAILING_PATHS = {
    "approve": "plain domestic",
    "reject": "billing amount 10% off the rate",
    "hold": "account with holds",
    "side event": "foreign (USD billed in EUR)",
}


@pytest.mark.parametrize("case_name", FAILING_PATHS.values(), ids=FAILING_PATHS.keys())
def test_an_outcome_the_bus_refuses_fails_the_execution_and_notifies(
    rules: RulesWorkflow, retry_waits: list[float], case_name: str
) -> None:
    boto3.client("events", region_name=REGION).delete_event_bus(Name=BUS)
    given = build_input(CASES[case_name])["detail"]

    first = rules.run(build_input(CASES[case_name]))
    waits_of_first = list(retry_waits)
    again = rules.run(build_input(CASES[case_name]))

    for execution in (first, again):
        assert execution.status == "FAILED"
        assert execution.error == "OutcomeNotPublished"
        assert execution.events == []
        [notification] = execution.notifications
        assert notification["Subject"] == "Business rules workflow failed"
        assert given["transactionId"] in notification["Message"]
        assert TOKEN not in json.dumps(notification)
    # Retried three times with backoff before giving up; the second execution's attempt count
    # starts afresh although both run on one parsed program.
    assert waits_of_first == [1, 2, 4]
    assert retry_waits == [1, 2, 4, 1, 2, 4]
