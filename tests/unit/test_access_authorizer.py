"""The decision AWS makes for a request, from the policies a template synthesizes: explicit
Deny over Allow, identity and resource policies, service principals, KMS key policies,
permissions boundaries, trust policies, and the record of what was refused.

Pure unit tests of ``payment_local.access.authorizer.Authorizer`` over an ``AccessModel``
built by hand from policies shaped like the ones CDK writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from payment_local.access.authorizer import AccessDenied, Authorizer, Denial
from payment_local.access.calls import (
    Check,
    checks_for_call,
    pipe_definition_checks,
    service_delivery_checks,
)
from payment_local.access.model import AccessModel, Role
from payment_local.access.policy import Caller, PolicyDocument, parse_document, request

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
POSTER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PaymentPosting-dev-PostingPosterRole59816B5C-1A2B3C"
PIPE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PaymentPosting-dev-IngestPipeRole087F828B-4D5E6F"
SAMPLE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PaymentPosting-dev-SampleSourceRoleDC23816B-7A8B9C"
STATES_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PaymentPosting-dev-RulesEngineStateMachineRole-0D1E"
UNKNOWN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/NotInTheTemplate"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/6f1d3c2a-8b4e-4f7a-9c1d-2e3f4a5b6c7d"
OUTSIDE_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
LEDGER = "PaymentPosting-dev-Ledger"
LEDGER_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{LEDGER}"
QUEUE = "PaymentPosting-dev-PostingDeadLetterQueue"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{QUEUE}"
BUS = "PaymentPostingdevIngestEventBusCDA19752"
BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS}"
OTHER_BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/PaymentPosting-dev-AuditBus"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{BUS}/PaymentPosting-dev-PostingRule1472F37F"
OTHER_RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{BUS}/PaymentPosting-dev-EnrichmentRule"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:PaymentPosting-dev-ScreeningOutcomes"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:PaymentPosting-dev-Rules"
PIPE_ARN = f"arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/PaymentPosting-dev-IngestPipe"
EVENTS_SERVICE = "events.amazonaws.com"

Statement = Mapping[str, Any]


def _doc(source: str, *statements: Statement) -> PolicyDocument:
    return parse_document(source, {"Version": "2012-10-17", "Statement": list(statements)})


def _allow(actions: str | list[str], resource: str | list[str]) -> Statement:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def _role(arn: str, *statements: Statement, trust: Statement | None = None) -> Role:
    logical_id = arn.rsplit("/", 1)[1].split("-")[2]
    return Role(
        logical_id,
        arn,
        trust=_doc(f"{logical_id} trust policy", trust) if trust else None,
        policies=[_doc(f"{logical_id}DefaultPolicy (AWS::IAM::Policy)", *statements)]
        if statements
        else [],
    )


LAMBDA_TRUST: Statement = {
    "Effect": "Allow",
    "Action": "sts:AssumeRole",
    "Principal": {"Service": "lambda.amazonaws.com"},
}
ROOT_STATEMENT: Statement = {
    "Effect": "Allow",
    "Action": "kms:*",
    "Principal": {"AWS": ROOT},
    "Resource": "*",
}
EVENTBRIDGE_KEY_STATEMENT: Statement = {
    "Effect": "Allow",
    "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
    "Principal": {"Service": EVENTS_SERVICE},
    "Resource": "*",
    "Condition": {
        "StringEquals": {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": BUS_ARN,
            "kms:EncryptionContext:aws:events:event-bus:arn": BUS_ARN,
        }
    },
}
SECURE_TRANSPORT_DENY: Statement = {
    "Effect": "Deny",
    "Action": "sqs:*",
    "Principal": {"AWS": "*"},
    "Resource": QUEUE_ARN,
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
RULE_MAY_SEND: Statement = {
    "Sid": "AllowEventRulePaymentPostingdevPostingRule1FE7521F",
    "Effect": "Allow",
    "Action": "sqs:SendMessage",
    "Principal": {"Service": EVENTS_SERVICE},
    "Resource": QUEUE_ARN,
    "Condition": {"ArnEquals": {"aws:SourceArn": RULE_ARN}},
}


def _model(
    *roles: Role,
    queue_policy: Sequence[Statement] = (SECURE_TRANSPORT_DENY, RULE_MAY_SEND),
    key_policy: Sequence[Statement] | None = (ROOT_STATEMENT, EVENTBRIDGE_KEY_STATEMENT),
    encrypted: Mapping[str, str] | None = None,
) -> AccessModel:
    model = AccessModel(account=ACCOUNT, region=REGION)
    model.roles = {role.arn: role for role in roles}
    if queue_policy:
        model.resource_policies[QUEUE_ARN] = [
            _doc("PostingDeadLetterQueuePolicy1DEF571D (queue policy)", *queue_policy)
        ]
    if key_policy is not None:
        model.key_policies[KEY_ARN] = _doc("IngestKey3FA2133C key policy", *key_policy)
    model.encryption = dict(encrypted or {})
    return model


def _call(
    authorizer: Authorizer, role_arn: str, prefix: str, operation: str, params: Mapping[str, Any]
) -> AccessDenied | None:
    checks = checks_for_call(authorizer.model, prefix, operation, params)
    return authorizer.check(authorizer.role(role_arn), checks)


def _decided(authorizer: Authorizer) -> list[tuple[str, str, bool]]:
    return [(req.action, req.resource, allowed) for (req, allowed) in authorizer.decided]


# -- identity policies and explicit Deny ---------------------------------------------------


def test_identity_policy_allows_the_role_what_it_grants() -> None:
    role = _role(POSTER_ROLE, _allow(["dynamodb:UpdateItem", "dynamodb:PutItem"], LEDGER_ARN))
    authorizer = Authorizer(_model(role))
    assert _call(authorizer, POSTER_ROLE, "dynamodb", "UpdateItem", {"TableName": LEDGER}) is None
    assert _decided(authorizer) == [("dynamodb:UpdateItem", LEDGER_ARN, True)]


def test_action_the_identity_policy_does_not_grant_is_refused_like_aws() -> None:
    role = _role(POSTER_ROLE, _allow("dynamodb:UpdateItem", LEDGER_ARN))
    authorizer = Authorizer(_model(role))
    denied = _call(authorizer, POSTER_ROLE, "dynamodb", "DeleteItem", {"TableName": LEDGER})
    assert isinstance(denied, AccessDenied)
    assert str(denied) == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{POSTER_ROLE.rsplit('/', 1)[1]} is not "
        f"authorized to perform: dynamodb:DeleteItem on resource: {LEDGER_ARN} because no "
        "identity-based policy allows the dynamodb:DeleteItem action"
    )
    assert denied.request.action == "dynamodb:DeleteItem"


def test_transact_write_is_refused_when_one_item_action_is_not_granted() -> None:
    role = _role(POSTER_ROLE, _allow(["dynamodb:PutItem", "dynamodb:UpdateItem"], LEDGER_ARN))
    authorizer = Authorizer(_model(role))
    items = [
        {"Put": {"TableName": LEDGER, "Item": {}}},
        {"ConditionCheck": {"TableName": LEDGER, "Key": {}}},
    ]
    denied = _call(
        authorizer, POSTER_ROLE, "dynamodb", "TransactWriteItems", {"TransactItems": items}
    )
    assert denied is not None
    assert denied.request.action == "dynamodb:ConditionCheckItem"


def test_role_outside_the_template_is_refused() -> None:
    authorizer = Authorizer(_model(_role(POSTER_ROLE, _allow("sqs:*", "*"))))
    denied = _call(authorizer, UNKNOWN_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert denied is not None


def test_explicit_deny_in_identity_policy_beats_an_allow() -> None:
    role = _role(
        POSTER_ROLE,
        _allow("dynamodb:*", LEDGER_ARN),
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
    )
    authorizer = Authorizer(_model(role))
    denied = _call(authorizer, POSTER_ROLE, "dynamodb", "DeleteItem", {"TableName": LEDGER})
    assert denied is not None
    assert "explicit deny in PostingPosterRole59816B5CDefaultPolicy" in str(denied)
    assert _call(authorizer, POSTER_ROLE, "dynamodb", "UpdateItem", {"TableName": LEDGER}) is None


def test_explicit_deny_in_resource_policy_beats_an_identity_allow() -> None:
    # "Only the poster may use this queue": everyone else is denied, whatever IAM grants.
    only_poster: Statement = {
        "Effect": "Deny",
        "Action": "sqs:*",
        "Principal": {"AWS": "*"},
        "Resource": QUEUE_ARN,
        "Condition": {"StringNotEquals": {"aws:PrincipalArn": POSTER_ROLE}},
    }
    poster = _role(POSTER_ROLE, _allow("sqs:SendMessage", QUEUE_ARN))
    sample = _role(SAMPLE_ROLE, _allow("sqs:*", "*"))
    authorizer = Authorizer(_model(poster, sample, queue_policy=[only_poster]))
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is None
    denied = _call(authorizer, SAMPLE_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert denied is not None
    assert "explicit deny in PostingDeadLetterQueuePolicy1DEF571D (queue policy)" in str(denied)


def test_cdk_secure_transport_deny_refuses_plain_http_but_not_sdk_calls() -> None:
    role = _role(POSTER_ROLE, _allow("sqs:SendMessage", QUEUE_ARN))
    authorizer = Authorizer(_model(role))
    # Every SDK call goes over TLS: the CDK enforceSSL statement does not get in the way.
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is None
    plain_http = request(
        authorizer.role(POSTER_ROLE),
        "sqs:SendMessage",
        QUEUE_ARN,
        {"aws:SecureTransport": ["false"]},
    )
    decision = authorizer.decide(plain_http)
    assert not decision.allowed
    assert "explicit deny" in decision.reason


def test_allow_that_requires_tls_applies_to_sdk_calls() -> None:
    role = _role(
        POSTER_ROLE,
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": QUEUE_ARN,
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
    )
    authorizer = Authorizer(_model(role))
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is None


# -- resource policies ---------------------------------------------------------------------


def test_resource_policy_naming_the_role_allows_it_without_an_identity_policy() -> None:
    grant: Statement = {
        "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
        "Principal": {"AWS": POSTER_ROLE},
        "Resource": QUEUE_ARN,
    }
    authorizer = Authorizer(_model(_role(POSTER_ROLE), queue_policy=[grant]))
    assert _call(authorizer, POSTER_ROLE, "sqs", "ReceiveMessage", {"QueueUrl": QUEUE_URL}) is None
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is not None


def test_resource_policy_naming_the_account_leaves_it_to_identity_policies() -> None:
    grant: Statement = {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Principal": {"AWS": ROOT},
        "Resource": QUEUE_ARN,
    }
    without = _role(SAMPLE_ROLE)
    with_grant = _role(POSTER_ROLE, _allow("sqs:SendMessage", QUEUE_ARN))
    authorizer = Authorizer(_model(without, with_grant, queue_policy=[grant]))
    assert _call(authorizer, SAMPLE_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is not None
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is None


def test_eventbridge_may_deliver_to_a_queue_only_for_the_rule_the_policy_names() -> None:
    authorizer = Authorizer(_model())
    events = authorizer.service(EVENTS_SERVICE)
    allowed = service_delivery_checks(authorizer.model, QUEUE_ARN, "sqs:SendMessage", RULE_ARN)
    assert authorizer.check(events, allowed) is None
    other = service_delivery_checks(authorizer.model, QUEUE_ARN, "sqs:SendMessage", OTHER_RULE_ARN)
    denied = authorizer.check(events, other)
    assert denied is not None
    assert str(denied).startswith(f"User: {EVENTS_SERVICE} is not authorized")
    assert "because no resource-based policy allows it" in str(denied)


def test_service_principal_is_refused_where_there_is_no_resource_policy() -> None:
    # An identity policy of some role granting sqs:* does not extend to EventBridge.
    authorizer = Authorizer(_model(_role(POSTER_ROLE, _allow("sqs:*", "*")), queue_policy=()))
    checks = service_delivery_checks(authorizer.model, QUEUE_ARN, "sqs:SendMessage", RULE_ARN)
    assert authorizer.check(authorizer.service(EVENTS_SERVICE), checks) is not None


def test_lambda_permission_lets_the_rule_invoke_the_function_and_its_versions() -> None:
    # The statement build_access_model makes of an AWS::Lambda::Permission.
    model = _model()
    model.resource_policies[FUNCTION_ARN] = [
        _doc(
            "ScreeningOutcomesRuleAllowEventRule (Lambda permission)",
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Principal": {"Service": EVENTS_SERVICE},
                "Resource": [FUNCTION_ARN, f"{FUNCTION_ARN}:*"],
                "Condition": {"ArnLike": {"aws:SourceArn": RULE_ARN}},
            },
        )
    ]
    authorizer = Authorizer(model)
    events = authorizer.service(EVENTS_SERVICE)
    for target in (FUNCTION_ARN, f"{FUNCTION_ARN}:live"):
        checks = service_delivery_checks(model, target, "lambda:InvokeFunction", RULE_ARN)
        assert authorizer.check(events, checks) is None, target
    other = service_delivery_checks(model, FUNCTION_ARN, "lambda:InvokeFunction", OTHER_RULE_ARN)
    assert authorizer.check(events, other) is not None


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}])
def test_wildcard_principal_with_source_arn_lets_eventbridge_deliver(principal: Any) -> None:
    grant: Statement = {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Principal": principal,
        "Resource": QUEUE_ARN,
        "Condition": {"ArnEquals": {"aws:SourceArn": RULE_ARN}},
    }
    authorizer = Authorizer(_model(queue_policy=[grant]))
    checks = service_delivery_checks(authorizer.model, QUEUE_ARN, "sqs:SendMessage", RULE_ARN)
    assert authorizer.check(authorizer.service(EVENTS_SERVICE), checks) is None


# -- KMS keys ------------------------------------------------------------------------------


def test_root_statement_and_identity_policy_together_allow_use_of_the_key() -> None:
    role = _role(
        POSTER_ROLE,
        _allow("dynamodb:GetItem", LEDGER_ARN),
        _allow(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"], KEY_ARN),
    )
    authorizer = Authorizer(_model(role, encrypted={LEDGER_ARN: KEY_ARN}))
    assert _call(authorizer, POSTER_ROLE, "dynamodb", "GetItem", {"TableName": LEDGER}) is None
    assert _decided(authorizer) == [
        ("dynamodb:GetItem", LEDGER_ARN, True),
        ("kms:Decrypt", KEY_ARN, True),
    ]


def test_root_statement_alone_does_not_allow_a_role_without_an_identity_grant() -> None:
    role = _role(POSTER_ROLE, _allow("dynamodb:GetItem", LEDGER_ARN))
    authorizer = Authorizer(_model(role, encrypted={LEDGER_ARN: KEY_ARN}))
    denied = _call(authorizer, POSTER_ROLE, "dynamodb", "GetItem", {"TableName": LEDGER})
    assert denied is not None
    assert (denied.request.action, denied.request.resource) == ("kms:Decrypt", KEY_ARN)
    assert "no identity-based policy allows it and the key policy leaves it to IAM" in str(denied)


def test_identity_policy_alone_does_not_open_a_key_whose_policy_has_no_root_statement() -> None:
    role = _role(POSTER_ROLE, _allow("dynamodb:GetItem", LEDGER_ARN), _allow("kms:*", "*"))
    authorizer = Authorizer(
        _model(role, key_policy=[EVENTBRIDGE_KEY_STATEMENT], encrypted={LEDGER_ARN: KEY_ARN})
    )
    denied = _call(authorizer, POSTER_ROLE, "dynamodb", "GetItem", {"TableName": LEDGER})
    assert denied is not None
    assert "because the key policy does not allow it" in str(denied)


def test_key_policy_naming_the_role_allows_it_without_an_identity_grant() -> None:
    grant: Statement = {
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Principal": {"AWS": POSTER_ROLE},
        "Resource": "*",
    }
    role = _role(POSTER_ROLE, _allow("sqs:SendMessage", QUEUE_ARN))
    authorizer = Authorizer(_model(role, key_policy=[grant], encrypted={QUEUE_ARN: KEY_ARN}))
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is None


def test_key_outside_the_template_is_left_to_identity_policies() -> None:
    granted = _role(
        POSTER_ROLE,
        _allow("sqs:SendMessage", QUEUE_ARN),
        _allow(["kms:GenerateDataKey", "kms:Decrypt"], OUTSIDE_KEY_ARN),
    )
    not_granted = _role(SAMPLE_ROLE, _allow("sqs:SendMessage", QUEUE_ARN))
    authorizer = Authorizer(_model(granted, not_granted, encrypted={QUEUE_ARN: OUTSIDE_KEY_ARN}))
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is None
    denied = _call(authorizer, SAMPLE_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert denied is not None
    assert denied.request.resource == OUTSIDE_KEY_ARN


def test_via_service_condition_allows_the_key_through_dynamodb_only() -> None:
    role = _role(
        POSTER_ROLE,
        _allow("dynamodb:GetItem", LEDGER_ARN),
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": KEY_ARN,
            "Condition": {"StringEquals": {"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"}},
        },
    )
    authorizer = Authorizer(_model(role, encrypted={LEDGER_ARN: KEY_ARN}))
    assert _call(authorizer, POSTER_ROLE, "dynamodb", "GetItem", {"TableName": LEDGER}) is None
    assert _call(authorizer, POSTER_ROLE, "kms", "Decrypt", {"KeyId": KEY_ARN}) is not None


def test_a_key_grant_through_another_service_is_refused() -> None:
    """A role granted the key for SQS cannot read a table encrypted with it."""
    role = _role(
        POSTER_ROLE,
        _allow("dynamodb:GetItem", LEDGER_ARN),
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": KEY_ARN,
            "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}},
        },
    )
    authorizer = Authorizer(_model(role, encrypted={LEDGER_ARN: KEY_ARN}))
    denied = _call(authorizer, POSTER_ROLE, "dynamodb", "GetItem", {"TableName": LEDGER})
    assert denied is not None
    assert (denied.request.action, denied.request.resource) == ("kms:Decrypt", KEY_ARN)


def test_a_grant_on_one_key_does_not_open_a_resource_encrypted_with_another() -> None:
    role = _role(
        POSTER_ROLE,
        _allow("dynamodb:GetItem", LEDGER_ARN),
        _allow("kms:Decrypt", OUTSIDE_KEY_ARN),
    )
    authorizer = Authorizer(_model(role, encrypted={LEDGER_ARN: KEY_ARN}))
    denied = _call(authorizer, POSTER_ROLE, "dynamodb", "GetItem", {"TableName": LEDGER})
    assert denied is not None
    assert denied.request.resource == KEY_ARN


PIPE_DATA_STATEMENT: Statement = {
    "Effect": "Allow",
    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
    "Principal": {"AWS": PIPE_ROLE},
    "Resource": "*",
    "Condition": {
        "ArnLike": {
            "kms:EncryptionContext:aws:pipe:arn": f"arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/*"
        },
        "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["aws:pipe:arn"]},
    },
}


def test_pipe_role_may_decrypt_pipe_data_and_nothing_else_with_the_key() -> None:
    role = _role(PIPE_ROLE, _allow("dynamodb:GetItem", LEDGER_ARN))
    authorizer = Authorizer(
        _model(
            role,
            key_policy=[ROOT_STATEMENT, PIPE_DATA_STATEMENT],
            encrypted={PIPE_ARN: KEY_ARN, LEDGER_ARN: KEY_ARN},
        )
    )
    pipe_data = pipe_definition_checks(authorizer.model, PIPE_ARN)
    assert authorizer.check(authorizer.role(PIPE_ROLE), pipe_data) is None
    # The same key, for the table's data: the encryption context is not the pipe's.
    denied = _call(authorizer, PIPE_ROLE, "dynamodb", "GetItem", {"TableName": LEDGER})
    assert denied is not None
    assert denied.request.resource == KEY_ARN


# The statement the stack writes (payment_stack/keys.py): either spelling of the context key.
PIPE_DATA_EITHER_SPELLING: Statement = {
    **PIPE_DATA_STATEMENT,
    "Condition": {
        "ArnLikeIfExists": {
            f"kms:EncryptionContext:{key}": f"arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/*"
            for key in ("aws:pipe:arn", "aws:pipes:arn")
        },
        "ForAnyValue:StringEquals": {
            "kms:EncryptionContextKeys": ["aws:pipe:arn", "aws:pipes:arn"]
        },
    },
}


@pytest.mark.parametrize(
    ("context", "allowed"),
    [
        ({"aws:pipe:arn": PIPE_ARN}, True),
        ({"aws:pipes:arn": PIPE_ARN}, True),
        ({}, False),  # no pipe context: the key's use for anything else
        ({"aws:pipes:arn": PIPE_ARN.replace(ACCOUNT, "999999999999")}, False),
        ({"aws:pipe:arn": PIPE_ARN, "aws:pipes:arn": LEDGER_ARN}, False),
    ],
)
def test_pipe_data_statement_takes_either_spelling_of_the_context_key(
    context: dict[str, str], allowed: bool
) -> None:
    role = _role(PIPE_ROLE)
    model = _model(role, key_policy=[ROOT_STATEMENT, PIPE_DATA_EITHER_SPELLING])
    authorizer = Authorizer(model)
    check = Check(
        "kms:Decrypt",
        KEY_ARN,
        {
            **{f"kms:EncryptionContext:{key}": (value,) for key, value in context.items()},
            "kms:EncryptionContextKeys": tuple(context),
        },
    )
    assert (authorizer.check(authorizer.role(PIPE_ROLE), [check]) is None) is allowed


def test_eventbridge_encrypts_put_events_on_its_own_key_permission() -> None:
    # The pipe role may put events; EventBridge itself needs the key for the encrypted bus.
    role = _role(PIPE_ROLE, _allow("events:PutEvents", BUS_ARN))
    authorizer = Authorizer(_model(role, encrypted={BUS_ARN: KEY_ARN}))
    entries = [{"EventBusName": BUS, "Source": "payments.ingest", "DetailType": "PaymentReceived"}]
    assert _call(authorizer, PIPE_ROLE, "events", "PutEvents", {"Entries": entries}) is None
    [key_request] = [req for req, _ in authorizer.decided if req.action == "kms:GenerateDataKey"]
    assert key_request.caller == Caller("service", EVENTS_SERVICE, ACCOUNT)


def test_put_events_is_refused_when_the_key_policy_names_another_bus() -> None:
    other_bus_only = {
        **EVENTBRIDGE_KEY_STATEMENT,
        "Condition": {
            "StringEquals": {
                "aws:SourceArn": OTHER_BUS_ARN,
                "kms:EncryptionContext:aws:events:event-bus:arn": OTHER_BUS_ARN,
            }
        },
    }
    role = _role(PIPE_ROLE, _allow("events:PutEvents", BUS_ARN))
    model = _model(role, key_policy=[ROOT_STATEMENT, other_bus_only], encrypted={BUS_ARN: KEY_ARN})
    authorizer = Authorizer(model)
    entries = [{"EventBusName": BUS, "Source": "payments.ingest", "DetailType": "PaymentReceived"}]
    denied = _call(authorizer, PIPE_ROLE, "events", "PutEvents", {"Entries": entries})
    assert denied is not None
    assert str(denied).startswith(f"User: {EVENTS_SERVICE} is not authorized to perform: ")
    assert "kms:GenerateDataKey" in str(denied)


def test_root_statement_does_not_let_eventbridge_use_the_key() -> None:
    role = _role(PIPE_ROLE, _allow(["events:PutEvents", "kms:*"], "*"))
    model = _model(role, key_policy=[ROOT_STATEMENT], encrypted={BUS_ARN: KEY_ARN})
    authorizer = Authorizer(model)
    entries = [{"EventBusName": BUS, "Source": "payments.ingest", "DetailType": "PaymentReceived"}]
    denied = _call(authorizer, PIPE_ROLE, "events", "PutEvents", {"Entries": entries})
    assert denied is not None
    assert "because the key policy does not allow it" in str(denied)


def test_source_condition_in_identity_policy_limits_put_events_per_entry() -> None:
    role = _role(
        PIPE_ROLE,
        {
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": BUS_ARN,
            "Condition": {"StringEquals": {"events:source": "payments.ingest"}},
        },
    )
    authorizer = Authorizer(_model(role))
    ok = [{"EventBusName": BUS, "Source": "payments.ingest", "DetailType": "PaymentReceived"}]
    assert _call(authorizer, PIPE_ROLE, "events", "PutEvents", {"Entries": ok}) is None
    mixed = [*ok, {"EventBusName": BUS, "Source": "payments.audit", "DetailType": "X"}]
    assert _call(authorizer, PIPE_ROLE, "events", "PutEvents", {"Entries": mixed}) is not None


# -- permissions boundaries ----------------------------------------------------------------


def _bounded(identity: Sequence[Statement], boundary: Sequence[Statement] | None) -> Role:
    role = _role(POSTER_ROLE, *identity)
    role.boundary = None if boundary is None else [_doc("PaymentsBoundary (boundary)", *boundary)]
    return role


@pytest.mark.parametrize(
    ("identity", "boundary", "allowed"),
    [
        ([_allow("sqs:SendMessage", QUEUE_ARN)], [_allow("sqs:*", "*")], True),
        ([_allow("sqs:SendMessage", QUEUE_ARN)], [_allow("dynamodb:*", "*")], False),
        ([], [_allow("sqs:*", "*")], False),  # a boundary grants nothing by itself
        ([_allow("sqs:*", "*")], [_allow("sqs:SendMessage", f"{QUEUE_ARN}-other")], False),
        (
            [_allow("sqs:SendMessage", QUEUE_ARN)],
            [
                _allow("sqs:*", "*"),
                {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "*"},
            ],
            False,
        ),
    ],
)
def test_permissions_boundary_limits_what_identity_policies_allow(
    identity: list[Statement], boundary: list[Statement], allowed: bool
) -> None:
    authorizer = Authorizer(_model(_bounded(identity, boundary), queue_policy=()))
    denied = _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert (denied is None) is allowed


def test_refusal_by_the_boundary_says_so() -> None:
    role = _bounded([_allow("sqs:SendMessage", QUEUE_ARN)], [_allow("dynamodb:*", "*")])
    authorizer = Authorizer(_model(role, queue_policy=()))
    denied = _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert denied is not None
    assert "PostingPosterRole59816B5C's permissions boundary does not allow it" in str(denied)


def test_unreadable_boundary_allows_nothing() -> None:
    role = _role(POSTER_ROLE, _allow("sqs:SendMessage", QUEUE_ARN))
    role.boundary = []  # the model's marker for a boundary policy it could not read
    authorizer = Authorizer(_model(role, queue_policy=()))
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is not None


def test_permissions_boundary_also_limits_a_resource_policy_grant_to_the_role_arn() -> None:
    grant: Statement = {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Principal": {"AWS": POSTER_ROLE},
        "Resource": QUEUE_ARN,
    }
    role = _bounded([], [_allow("dynamodb:*", "*")])
    authorizer = Authorizer(_model(role, queue_policy=[grant]))
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is not None


# -- condition keys the local check cannot evaluate ----------------------------------------


def test_allow_needing_an_unknown_condition_key_does_not_apply() -> None:
    role = _role(
        POSTER_ROLE,
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": QUEUE_ARN,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        },
    )
    authorizer = Authorizer(_model(role))
    assert _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL}) is not None


def test_deny_needing_an_unknown_condition_key_applies() -> None:
    role = _role(
        POSTER_ROLE,
        _allow("sqs:SendMessage", QUEUE_ARN),
        {
            "Effect": "Deny",
            "Action": "sqs:*",
            "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    )
    authorizer = Authorizer(_model(role))
    denied = _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert denied is not None
    assert "explicit deny" in str(denied)


# -- trust policies ------------------------------------------------------------------------


def test_lambda_may_assume_a_function_role_and_other_services_may_not() -> None:
    authorizer = Authorizer(_model(_role(POSTER_ROLE, trust=LAMBDA_TRUST)))
    assert authorizer.check_assume_role(POSTER_ROLE, "lambda.amazonaws.com") is None
    denied = authorizer.check_assume_role(POSTER_ROLE, "states.amazonaws.com")
    assert denied is not None
    assert "because the role's trust policy does not allow it" in str(denied)


def test_trust_policy_conditions_on_source_arn_and_source_account() -> None:
    # The trust policy CDK writes for a state machine role.
    trust: Statement = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"Service": "states.amazonaws.com"},
        "Condition": {
            "ArnLike": {"aws:SourceArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:*"},
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
        },
    }
    authorizer = Authorizer(_model(_role(STATES_ROLE, trust=trust)))
    service = "states.amazonaws.com"
    assert authorizer.check_assume_role(STATES_ROLE, service, STATE_MACHINE_ARN) is None
    assert authorizer.check_assume_role(STATES_ROLE, service, PIPE_ARN) is not None
    assert authorizer.check_assume_role(STATES_ROLE, service) is not None  # no source: no match


def test_trust_policy_on_source_account_only_admits_any_source_in_the_account() -> None:
    trust: Statement = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"Service": "pipes.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }
    authorizer = Authorizer(_model(_role(PIPE_ROLE, trust=trust)))
    assert authorizer.check_assume_role(PIPE_ROLE, "pipes.amazonaws.com", PIPE_ARN) is None


def test_trust_policy_deny_beats_its_allow() -> None:
    deny: Statement = {
        "Effect": "Deny",
        "Action": "sts:AssumeRole",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Condition": {"StringNotEquals": {"aws:SourceAccount": "111122223333"}},
    }
    role = _role(POSTER_ROLE)
    role.trust = _doc("PostingPosterRole trust policy", LAMBDA_TRUST, deny)
    authorizer = Authorizer(_model(role))
    assert authorizer.check_assume_role(POSTER_ROLE, "lambda.amazonaws.com") is not None


def test_role_outside_the_template_cannot_be_assumed() -> None:
    authorizer = Authorizer(_model())
    denied = authorizer.check_assume_role(UNKNOWN_ROLE, "lambda.amazonaws.com")
    assert denied is not None
    assert "because the role is not in the template" in str(denied)
    assert [d.action for d in authorizer.denials()] == ["sts:AssumeRole"]


# -- credentials ---------------------------------------------------------------------------


def test_credentials_identify_the_role_they_were_issued_for() -> None:
    authorizer = Authorizer(_model(_role(POSTER_ROLE), _role(PIPE_ROLE)))
    poster = authorizer.credentials_for(POSTER_ROLE)
    pipe = authorizer.credentials_for(PIPE_ROLE)
    assert poster.access_key.startswith("ASIA")  # a temporary key, as Lambda's are
    assert len(poster.access_key) == 20
    assert poster.access_key != pipe.access_key
    assert authorizer.credentials_for(POSTER_ROLE) == poster  # stable across calls
    assert authorizer.caller_for(poster.access_key) == Caller("role", POSTER_ROLE, ACCOUNT)
    assert authorizer.caller_for(pipe.access_key) == Caller("role", PIPE_ROLE, ACCOUNT)


def test_unknown_or_missing_access_key_identifies_no_template_principal() -> None:
    authorizer = Authorizer(_model(_role(POSTER_ROLE)))
    authorizer.credentials_for(POSTER_ROLE)
    assert authorizer.caller_for("testing") is None
    assert authorizer.caller_for(None) is None
    assert (
        Authorizer(_model()).caller_for(authorizer.credentials_for(POSTER_ROLE).access_key) is None
    )


# -- the record ----------------------------------------------------------------------------


def test_check_stops_at_the_first_refusal_as_aws_does() -> None:
    role = _role(POSTER_ROLE, _allow(["sqs:SendMessage", "kms:Decrypt"], "*"))
    authorizer = Authorizer(_model(role, encrypted={QUEUE_ARN: KEY_ARN}))
    denied = _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert denied is not None
    assert denied.request.action == "kms:GenerateDataKey"
    assert _decided(authorizer) == [
        ("sqs:SendMessage", QUEUE_ARN, True),
        ("kms:GenerateDataKey", KEY_ARN, False),
    ]  # kms:Decrypt, after the refusal, is never asked


def test_denials_aggregate_refused_requests_with_counts() -> None:
    role = _role(POSTER_ROLE, _allow("dynamodb:UpdateItem", LEDGER_ARN))
    authorizer = Authorizer(_model(role))
    for _ in range(3):
        _call(authorizer, POSTER_ROLE, "dynamodb", "DeleteItem", {"TableName": LEDGER})
    _call(authorizer, POSTER_ROLE, "dynamodb", "UpdateItem", {"TableName": LEDGER})
    _call(authorizer, POSTER_ROLE, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    events = authorizer.service(EVENTS_SERVICE)
    authorizer.check(
        events,
        service_delivery_checks(authorizer.model, QUEUE_ARN, "sqs:SendMessage", OTHER_RULE_ARN),
    )
    role_name = POSTER_ROLE.rsplit("/", 1)[1]
    assert authorizer.denials() == [
        Denial(f"{EVENTS_SERVICE} for {OTHER_RULE_ARN}", "sqs:SendMessage", QUEUE_ARN, 1),
        Denial(f"role {role_name}", "dynamodb:DeleteItem", LEDGER_ARN, 3),
        Denial(f"role {role_name}", "sqs:SendMessage", QUEUE_ARN, 1),
    ]
    assert authorizer.denials()[1].to_json() == {
        "principal": f"role {role_name}",
        "action": "dynamodb:DeleteItem",
        "resource": LEDGER_ARN,
        "count": 3,
    }
    assert len({req for req, _ in authorizer.decided}) == 4


def test_not_enforcing_allows_everything_and_records_nothing() -> None:
    authorizer = Authorizer(_model(_role(POSTER_ROLE)), enforce=False)
    assert _call(authorizer, POSTER_ROLE, "dynamodb", "DeleteItem", {"TableName": LEDGER}) is None
    assert authorizer.check(
        authorizer.role(UNKNOWN_ROLE), [Check("sqs:DeleteQueue", QUEUE_ARN)]
    ) is (None)
    assert authorizer.check_assume_role(UNKNOWN_ROLE, "lambda.amazonaws.com") is None
    assert not authorizer.decided
    assert authorizer.denials() == []
