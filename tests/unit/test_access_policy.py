"""How the local access check reads one policy statement: Action/NotAction and
Resource/NotResource wildcards, the Principal element, and the Condition operators.

Pure unit tests of ``payment_local.access.policy`` and ``payment_local.access.conditions``:
each case is a request AWS would allow or refuse, and the evaluator must agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from payment_local.access.conditions import condition_applies
from payment_local.access.policy import (
    Caller,
    Effect,
    PrincipalMatch,
    Statement,
    parse_document,
    request,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "eu-west-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/PaymentPosting-dev-PostingPosterRole59816B5C-1A2B3C4D"
OTHER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/PaymentPosting-dev-SampleSourceRoleDC23816B-9Z8Y"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/PaymentPosting-dev-Ledger"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:PaymentPosting-dev-PostingQueue"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/6f1d3c2a-8b4e-4f7a-9c1d-2e3f4a5b6c7d"
BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/PaymentPostingdevIngestEventBusCDA19752"
RULE_ARN = (
    f"arn:aws:events:{REGION}:{ACCOUNT}:rule/PaymentPostingdevIngestEventBusCDA19752/"
    "PaymentPosting-dev-PostingRule1472F37F"
)

ROLE = Caller("role", ROLE_ARN, ACCOUNT)
EVENTS = Caller("service", "events.amazonaws.com", ACCOUNT)
LAMBDA = Caller("service", "lambda.amazonaws.com", ACCOUNT)


def _statement(raw: Mapping[str, Any]) -> Statement:
    """The one statement of a policy document, parsed as the template gives it."""
    document = parse_document("test policy", {"Version": "2012-10-17", "Statement": [raw]})
    assert len(document.statements) == 1
    return document.statements[0]


def _holds(
    conditions: Mapping[str, Mapping[str, Any]],
    context: Mapping[str, tuple[str, ...]],
    *,
    deny: bool = False,
) -> bool:
    """Whether a Condition block (as written in a policy) holds for a request context."""
    parsed = _statement({"Effect": "Allow", "Action": "*", "Condition": conditions}).conditions
    lowered = {key.lower(): values for key, values in context.items()}
    return condition_applies(parsed, lowered, deny=deny)


# -- Action and NotAction ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("sqs:SendMessage", "sqs:SendMessage", True),
        ("SQS:SendMessage", "sqs:sendmessage", True),  # action names are case-insensitive
        ("sqs:SendMessage", "sqs:SendMessageBatch", False),  # no implicit prefix match
        ("kms:GenerateDataKey*", "kms:GenerateDataKey", True),
        ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", True),
        ("kms:GenerateDataKey*", "kms:Decrypt", False),
        ("dynamodb:*Item", "dynamodb:ConditionCheckItem", True),
        ("dynamodb:*Item", "dynamodb:Query", False),
        ("kms:ReEncrypt*", "kms:ReEncryptFrom", True),
        ("kms:?ecrypt", "kms:Decrypt", True),
        ("kms:?ecrypt", "kms:ReDecrypt", False),  # ? is exactly one character
        ("*", "states:StartExecution", True),
        ("sqs:*", "sns:Publish", False),  # the service prefix is part of the pattern
    ],
)
def test_action_patterns_match_like_iam(pattern: str, action: str, matches: bool) -> None:
    statement = _statement({"Effect": "Allow", "Action": pattern, "Resource": "*"})
    assert statement.matches_action(action) is matches


def test_action_list_matches_any_of_its_entries() -> None:
    statement = _statement(
        {
            "Effect": "Allow",
            "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
            "Resource": QUEUE_ARN,
        }
    )
    assert statement.matches_action("sqs:SendMessage")
    assert not statement.matches_action("sqs:ReceiveMessage")


def test_not_action_matches_every_action_except_those_listed() -> None:
    statement = _statement({"Effect": "Deny", "NotAction": ["kms:Decrypt"], "Resource": KEY_ARN})
    assert statement.matches_action("kms:ScheduleKeyDeletion")
    assert not statement.matches_action("kms:Decrypt")
    assert not statement.matches_action("KMS:decrypt")


def test_statement_without_action_or_not_action_matches_nothing() -> None:
    statement = _statement({"Effect": "Allow", "Resource": "*"})
    assert not statement.matches_action("sqs:SendMessage")


# -- Resource and NotResource --------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        ("*", QUEUE_ARN, True),
        (TABLE_ARN, TABLE_ARN, True),
        # A grant on a table does not cover its indexes: CDK adds "<table>/index/*" for them.
        (TABLE_ARN, f"{TABLE_ARN}/index/byAccount", False),
        (f"{TABLE_ARN}/index/*", f"{TABLE_ARN}/index/byAccount", True),
        (f"{TABLE_ARN}/index/*", TABLE_ARN, False),
        # ARNs are case-sensitive, unlike action names.
        (QUEUE_ARN, QUEUE_ARN.lower(), False),
        (f"arn:aws:sqs:{REGION}:{ACCOUNT}:PaymentPosting-dev-*", QUEUE_ARN, True),
        (f"arn:aws:sqs:*:{ACCOUNT}:PaymentPosting-dev-PostingQueue", QUEUE_ARN, True),
        (f"arn:aws:sqs:*:{OTHER_ACCOUNT}:PaymentPosting-dev-PostingQueue", QUEUE_ARN, False),
        # * crosses "/" in a resource (a rule on a custom bus has two path segments).
        (f"arn:aws:events:{REGION}:{ACCOUNT}:rule/*", RULE_ARN, True),
        (f"{TABLE_ARN}-v?", f"{TABLE_ARN}-v2", True),
        (f"{TABLE_ARN}-v?", f"{TABLE_ARN}-v10", False),
        # "[" is literal in IAM, not a character class as in fnmatch.
        (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/[dev]*",
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/[dev]posting",
            True,
        ),
        (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/[dev]*",
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/dposting",
            False,
        ),
    ],
)
def test_resource_patterns_match_like_iam(pattern: str, resource: str, matches: bool) -> None:
    statement = _statement({"Effect": "Allow", "Action": "*", "Resource": pattern})
    assert statement.matches_resource(resource) is matches


def test_not_resource_matches_every_resource_except_those_listed() -> None:
    statement = _statement({"Effect": "Deny", "Action": "kms:*", "NotResource": [KEY_ARN]})
    other_key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-0000-4000-8000-000000000000"
    assert statement.matches_resource(other_key)
    assert not statement.matches_resource(KEY_ARN)


def test_statement_without_resource_covers_every_resource() -> None:
    # Trust policies carry no Resource element: they apply to the role they are attached to.
    statement = _statement(
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    )
    assert statement.matches_resource(ROLE_ARN)


# -- Principal and NotPrincipal ------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ({"AWS": ROLE_ARN}, ROLE, PrincipalMatch.DIRECT),
        ({"AWS": [OTHER_ROLE_ARN, ROLE_ARN]}, ROLE, PrincipalMatch.DIRECT),
        ({"AWS": OTHER_ROLE_ARN}, ROLE, PrincipalMatch.NONE),
        ({"AWS": "*"}, ROLE, PrincipalMatch.DIRECT),
        ("*", ROLE, PrincipalMatch.DIRECT),
        # The account (root ARN or bare id) defers to the caller's identity policies.
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, ROLE, PrincipalMatch.ACCOUNT),
        ({"AWS": ACCOUNT}, ROLE, PrincipalMatch.ACCOUNT),
        ({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, ROLE, PrincipalMatch.NONE),
        ({"Service": "events.amazonaws.com"}, EVENTS, PrincipalMatch.DIRECT),
        ({"Service": ["events.amazonaws.com", "sns.amazonaws.com"]}, EVENTS, PrincipalMatch.DIRECT),
        ({"Service": "events.amazonaws.com"}, LAMBDA, PrincipalMatch.NONE),
        ({"Service": "events.amazonaws.com"}, ROLE, PrincipalMatch.NONE),
        # The account's root statement does not name a service principal.
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, EVENTS, PrincipalMatch.NONE),
        ({"AWS": ROLE_ARN}, EVENTS, PrincipalMatch.NONE),
    ],
)
def test_principal_element_names_the_caller(
    principal: Any, caller: Caller, expected: PrincipalMatch
) -> None:
    statement = _statement(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Principal": principal, "Resource": "*"}
    )
    assert statement.principal_match(caller) is expected


def test_identity_policy_statement_applies_to_its_own_principal() -> None:
    statement = _statement({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE_ARN})
    assert statement.principals is None
    assert statement.principal_match(ROLE) is PrincipalMatch.DIRECT


def test_not_principal_applies_to_everyone_except_those_named() -> None:
    statement = _statement(
        {
            "Effect": "Deny",
            "Action": "sqs:*",
            "NotPrincipal": {"AWS": ROLE_ARN},
            "Resource": QUEUE_ARN,
        }
    )
    assert statement.principal_match(ROLE) is PrincipalMatch.NONE
    assert statement.principal_match(Caller("role", OTHER_ROLE_ARN, ACCOUNT)) is not (
        PrincipalMatch.NONE
    )
    assert statement.principal_match(EVENTS) is not PrincipalMatch.NONE


# -- parsing -------------------------------------------------------------------------------


def test_parse_document_reads_a_single_statement_object() -> None:
    document = parse_document(
        "PostingQueuePolicy (queue policy)",
        {
            "Version": "2012-10-17",
            "Statement": {
                "Sid": "DenyPlainHttp",
                "Effect": "Deny",
                "Action": "sqs:*",
                "Principal": {"AWS": "*"},
                "Resource": QUEUE_ARN,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        },
    )
    assert document.source == "PostingQueuePolicy (queue policy)"
    [statement] = document.statements
    assert statement.effect is Effect.DENY
    assert statement.sid == "DenyPlainHttp"


def test_effect_defaults_to_allow_and_document_without_statements_is_empty() -> None:
    assert _statement({"Action": "sqs:SendMessage"}).effect is Effect.ALLOW
    assert parse_document("empty", {"Version": "2012-10-17"}).statements == ()


def test_json_booleans_and_numbers_in_conditions_compare_as_iam_strings() -> None:
    # A template may carry true/false as JSON booleans; IAM compares them as "true"/"false".
    statement = _statement(
        {
            "Effect": "Deny",
            "Action": "sqs:*",
            "Principal": {"AWS": "*"},
            "Resource": QUEUE_ARN,
            "Condition": {
                "Bool": {"aws:SecureTransport": False},
                "NumericLessThan": {"kms:EncryptionContext:schema-version": 2},
            },
        }
    )
    plain_http = request(
        ROLE,
        "sqs:SendMessage",
        QUEUE_ARN,
        {"aws:SecureTransport": ["false"], "kms:EncryptionContext:schema-version": ["1"]},
    )
    over_tls = request(
        ROLE,
        "sqs:SendMessage",
        QUEUE_ARN,
        {"aws:SecureTransport": ["true"], "kms:EncryptionContext:schema-version": ["1"]},
    )
    assert statement.applies(plain_http, frozenset())
    assert not statement.applies(over_tls, frozenset())


def test_json_boolean_in_a_string_condition_compares_as_lower_case_text() -> None:
    # CDK writes `true` for a Python True; IAM reads it as the string "true".
    key = "kms:EncryptionContext:retained"
    assert _holds({"StringEquals": {key: True}}, {key: ("true",)})
    assert not _holds({"StringEquals": {key: [False]}}, {key: ("true",)})


# -- requests and callers ------------------------------------------------------------------


def test_request_context_keys_are_case_insensitive_and_order_free() -> None:
    first = request(
        EVENTS,
        "sqs:SendMessage",
        QUEUE_ARN,
        {"aws:SourceArn": [RULE_ARN], "aws:SourceAccount": [ACCOUNT]},
    )
    second = request(
        EVENTS,
        "sqs:SendMessage",
        QUEUE_ARN,
        {"AWS:SOURCEACCOUNT": (ACCOUNT,), "aws:sourcearn": (RULE_ARN,)},
    )
    assert first == second
    assert hash(first) == hash(second)
    assert first.context_map() == {"aws:sourcearn": (RULE_ARN,), "aws:sourceaccount": (ACCOUNT,)}


def test_caller_name_is_the_role_name_or_the_service_principal() -> None:
    with_path = Caller("role", f"arn:aws:iam::{ACCOUNT}:role/service-role/PostingPoster", ACCOUNT)
    assert with_path.name == "PostingPoster"
    assert EVENTS.name == "events.amazonaws.com"


def test_statement_applies_only_when_action_resource_and_condition_all_match() -> None:
    statement = _statement(
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": QUEUE_ARN,
            "Condition": {"ArnEquals": {"aws:SourceArn": RULE_ARN}},
        }
    )
    context = {"aws:SourceArn": [RULE_ARN]}
    assert statement.applies(request(EVENTS, "sqs:SendMessage", QUEUE_ARN, context), frozenset())
    assert not statement.applies(
        request(EVENTS, "sqs:DeleteMessage", QUEUE_ARN, context), frozenset()
    )
    other_queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:PaymentPosting-dev-IngestDeadLetterQueue"
    assert not statement.applies(
        request(EVENTS, "sqs:SendMessage", other_queue, context), frozenset()
    )
    assert not statement.applies(request(EVENTS, "sqs:SendMessage", QUEUE_ARN), frozenset())


# -- condition operators -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "policy", "value", "holds"),
    [
        ("StringEquals", ACCOUNT, ACCOUNT, True),
        ("StringEquals", ACCOUNT, OTHER_ACCOUNT, False),
        ("StringEquals", "payments.ingest", "Payments.Ingest", False),  # case-sensitive
        ("StringEqualsIgnoreCase", "payments.ingest", "Payments.Ingest", True),
        ("StringNotEquals", ACCOUNT, OTHER_ACCOUNT, True),
        ("StringNotEquals", ACCOUNT, ACCOUNT, False),
        ("StringNotEqualsIgnoreCase", "payments.ingest", "PAYMENTS.INGEST", False),
        ("StringLike", "payments.*", "payments.ingest", True),
        ("StringLike", "payments.*", "ledger.ingest", False),
        ("StringLike", "payments.ingest-v?", "payments.ingest-v2", True),
        ("StringLike", "payments.ingest-v?", "payments.ingest-v10", False),
        ("StringNotLike", "payments.*", "ledger.ingest", True),
        ("StringNotLike", "payments.*", "payments.ingest", False),
        # "[" is literal in IAM, not the start of a character class as in fnmatch.
        ("StringLike", "[dev] payments.*", "[dev] payments.ingest", True),
        ("StringLike", "[dev] payments.*", "d payments.ingest", False),
    ],
)
def test_string_operators(operator: str, policy: str, value: str, holds: bool) -> None:
    assert _holds({operator: {"events:source": policy}}, {"events:source": (value,)}) is holds


@pytest.mark.parametrize(
    ("operator", "policy", "value", "holds"),
    [
        ("ArnEquals", RULE_ARN, RULE_ARN, True),
        ("ArnEquals", RULE_ARN, f"{RULE_ARN}X", False),
        ("ArnLike", f"arn:aws:events:{REGION}:{ACCOUNT}:rule/*", RULE_ARN, True),
        ("ArnLike", f"arn:aws:events:{REGION}:{OTHER_ACCOUNT}:rule/*", RULE_ARN, False),
        ("ArnLike", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:*", RULE_ARN, False),
        ("ArnNotEquals", BUS_ARN, RULE_ARN, True),
        ("ArnNotEquals", RULE_ARN, RULE_ARN, False),
        ("ArnNotLike", f"arn:aws:events:*:{ACCOUNT}:rule/*", RULE_ARN, False),
    ],
)
def test_arn_operators(operator: str, policy: str, value: str, holds: bool) -> None:
    assert _holds({operator: {"aws:SourceArn": policy}}, {"aws:SourceArn": (value,)}) is holds


@pytest.mark.parametrize(
    ("policy", "value", "holds"),
    [
        ("false", "false", True),
        ("false", "true", False),
        ("true", "true", True),
        ("True", "true", True),
    ],
)
def test_bool_operator(policy: str, value: str, holds: bool) -> None:
    assert _holds({"Bool": {"aws:SecureTransport": policy}}, {"aws:SecureTransport": (value,)}) is (
        holds
    )


@pytest.mark.parametrize(
    ("operator", "policy", "value", "holds"),
    [
        ("NumericEquals", "2", "2", True),
        ("NumericEquals", "2", "2.0", True),
        ("NumericEquals", "2", "3", False),
        ("NumericNotEquals", "2", "3", True),
        ("NumericNotEquals", "2", "2", False),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "11", True),
        ("NumericGreaterThan", "10", "10", False),
        ("NumericGreaterThanEquals", "10", "10", True),
        ("NumericGreaterThanEquals", "10", "9", False),
        ("NumericLessThan", "10", "nine", False),  # not a number: no match
    ],
)
def test_numeric_operators(operator: str, policy: str, value: str, holds: bool) -> None:
    key = "kms:EncryptionContext:schema-version"
    assert _holds({operator: {key: policy}}, {key: (value,)}) is holds


def test_several_values_for_one_key_are_ored() -> None:
    condition = {"StringEquals": {"events:source": ["payments.ingest", "payments.enrichment"]}}
    assert _holds(condition, {"events:source": ("payments.enrichment",)})
    assert not _holds(condition, {"events:source": ("payments.posting",)})


def test_several_values_for_a_negated_operator_are_nored() -> None:
    # "neither of these roles": the Deny holds only for a third principal.
    condition = {"StringNotEquals": {"aws:PrincipalArn": [ROLE_ARN, OTHER_ROLE_ARN]}}
    assert not _holds(condition, {"aws:PrincipalArn": (ROLE_ARN,)}, deny=True)
    assert not _holds(condition, {"aws:PrincipalArn": (OTHER_ROLE_ARN,)}, deny=True)
    third = f"arn:aws:iam::{ACCOUNT}:role/Intruder"
    assert _holds(condition, {"aws:PrincipalArn": (third,)}, deny=True)


def test_several_keys_and_several_operators_are_anded() -> None:
    # The CDK key policy statement for EventBridge: account, bus and encryption context.
    condition = {
        "StringEquals": {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": BUS_ARN,
            "kms:EncryptionContext:aws:events:event-bus:arn": BUS_ARN,
        },
    }
    full = {
        "aws:SourceAccount": (ACCOUNT,),
        "aws:SourceArn": (BUS_ARN,),
        "kms:EncryptionContext:aws:events:event-bus:arn": (BUS_ARN,),
    }
    assert _holds(condition, full)
    assert not _holds(condition, {**full, "aws:SourceAccount": (OTHER_ACCOUNT,)})
    assert not _holds(condition, {k: v for k, v in full.items() if not k.startswith("kms:")})
    two_operators = {
        "ArnLike": {"aws:SourceArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:*"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:RulesEngine"
    assert _holds(two_operators, {"aws:SourceArn": (machine,), "aws:SourceAccount": (ACCOUNT,)})
    assert not _holds(
        two_operators, {"aws:SourceArn": (machine,), "aws:SourceAccount": (OTHER_ACCOUNT,)}
    )


def test_condition_keys_are_case_insensitive() -> None:
    assert _holds(
        {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}, {"aws:sourceaccount": (ACCOUNT,)}
    )


# -- missing keys, IfExists and Null -------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "holds"),
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("ArnEquals", False),
        ("ArnLike", False),
        ("Bool", False),
        ("NumericEquals", False),
        # Negated operators hold when the key is absent.
        ("StringNotEquals", True),
        ("StringNotLike", True),
        ("ArnNotEquals", True),
        ("ArnNotLike", True),
        ("NumericNotEquals", True),
        # ...IfExists holds when the key is absent.
        ("StringEqualsIfExists", True),
        ("ArnLikeIfExists", True),
        ("BoolIfExists", True),
    ],
)
def test_missing_key_matches_nothing_but_negated_and_if_exists_hold(
    operator: str, holds: bool
) -> None:
    assert _holds({operator: {"aws:SourceArn": RULE_ARN}}, {}) is holds


def test_if_exists_still_tests_a_key_that_is_present() -> None:
    condition = {"ArnEqualsIfExists": {"aws:SourceArn": RULE_ARN}}
    assert _holds(condition, {"aws:SourceArn": (RULE_ARN,)})
    assert not _holds(condition, {"aws:SourceArn": (BUS_ARN,)})


@pytest.mark.parametrize(
    ("policy", "context", "holds"),
    [
        ("true", {}, True),
        ("true", {"aws:SourceArn": (RULE_ARN,)}, False),
        ("false", {"aws:SourceArn": (RULE_ARN,)}, True),
        ("false", {}, False),
    ],
)
def test_null_operator_tests_whether_the_key_is_absent(
    policy: str, context: dict[str, tuple[str, ...]], holds: bool
) -> None:
    assert _holds({"Null": {"aws:SourceArn": policy}}, context) is holds


# -- set operators -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_keys", "holds"),
    [
        (("aws:events:event-bus:arn",), True),
        (("aws:events:event-bus:arn", "tenant"), True),  # one member is enough
        (("tenant",), False),
    ],
)
def test_for_any_value_holds_when_one_request_value_matches(
    request_keys: tuple[str, ...], holds: bool
) -> None:
    condition = {
        "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "aws:events:event-bus:arn"}
    }
    assert _holds(condition, {"kms:EncryptionContextKeys": request_keys}) is holds


def test_for_any_value_does_not_hold_when_the_key_is_missing() -> None:
    condition = {
        "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "aws:events:event-bus:arn"}
    }
    assert not _holds(condition, {})


@pytest.mark.parametrize(
    ("request_keys", "holds"),
    [
        (("aws:events:event-bus:arn",), True),
        (("aws:events:event-bus:arn", "aws:events:rule:arn"), True),
        (("aws:events:event-bus:arn", "tenant"), False),  # every member must match
    ],
)
def test_for_all_values_holds_when_every_request_value_matches(
    request_keys: tuple[str, ...], holds: bool
) -> None:
    condition = {
        "ForAllValues:StringEquals": {
            "kms:EncryptionContextKeys": ["aws:events:event-bus:arn", "aws:events:rule:arn"]
        }
    }
    assert _holds(condition, {"kms:EncryptionContextKeys": request_keys}) is holds


def test_for_all_values_with_negated_operator_holds_when_the_key_is_missing() -> None:
    # The IAM guide's example: a Deny with ForAllValues:StringNotLike on a missing key matches.
    condition = {"ForAllValues:StringNotLike": {"kms:EncryptionContextKeys": "tenant*"}}
    assert _holds(condition, {}, deny=True)
    assert not _holds(condition, {"kms:EncryptionContextKeys": ("tenant-id",)}, deny=True)
    assert _holds(
        condition, {"kms:EncryptionContextKeys": ("aws:events:event-bus:arn",)}, deny=True
    )


def test_for_all_values_holds_when_the_key_is_missing() -> None:
    # A KMS call without an encryption context has no kms:EncryptionContextKeys; AWS lets
    # this Allow apply (the reason the IAM guide recommends pairing it with Null: false).
    condition = {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "aws:events:event-bus:arn"}
    }
    assert _holds(condition, {})


# -- what the local check cannot evaluate --------------------------------------------------


def test_unknown_key_makes_an_allow_not_apply_and_a_deny_apply() -> None:
    condition = {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    assert not _holds(condition, {}, deny=False)
    assert _holds(condition, {}, deny=True)


def test_unknown_operator_on_a_known_key_is_evaluated_most_restrictively() -> None:
    key = "kms:EncryptionContext:expires"
    condition = {"DateGreaterThan": {key: "2030-01-01T00:00:00Z"}}
    context = {key: ("2031-01-01T00:00:00Z",)}
    assert not _holds(condition, context, deny=False)
    assert _holds(condition, context, deny=True)


def test_deny_with_an_unknown_key_still_needs_its_known_conditions() -> None:
    # Only the unknown part is assumed to hold; a known part that fails keeps the Deny off.
    condition = {
        "NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"},
        "StringEquals": {"aws:SourceAccount": OTHER_ACCOUNT},
    }
    assert not _holds(condition, {"aws:SourceAccount": (ACCOUNT,)}, deny=True)
    assert _holds(condition, {"aws:SourceAccount": (OTHER_ACCOUNT,)}, deny=True)


def test_keys_reported_unknown_by_the_model_are_treated_as_unknown() -> None:
    conditions = {"ArnEquals": {"aws:sourcearn": (RULE_ARN,)}}
    context = {"aws:sourcearn": (RULE_ARN,)}
    assert condition_applies(conditions, context, deny=False)
    unknown = frozenset({"aws:sourcearn"})
    assert not condition_applies(conditions, context, deny=False, unknown_keys=unknown)
    assert condition_applies(conditions, {}, deny=True, unknown_keys=unknown)
