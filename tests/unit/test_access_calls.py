"""Which authorizations AWS makes for an API call: the action names it checks (not always
the operation's own), the resources, the condition context, and the KMS checks implied by
a customer-managed key on the resource.

Pure unit tests of ``payment_local.access.calls.checks_for_call`` (and the EventBridge
service checks), over an ``AccessModel`` built by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from payment_local.access.calls import (
    BUS_CONTEXT_KEY,
    EVENTS_SERVICE,
    Check,
    bus_read_checks,
    checks_for_call,
    pipe_definition_checks,
    service_delivery_checks,
)
from payment_local.access.model import AccessModel
from payment_local.access.policy import Caller, parse_document

ACCOUNT = "123456789012"
REGION = "eu-west-1"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/6f1d3c2a-8b4e-4f7a-9c1d-2e3f4a5b6c7d"
ARCHIVE_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
LEDGER = "PaymentPosting-dev-Ledger"
LEDGER_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{LEDGER}"
ACCOUNTS = "PaymentPosting-dev-Accounts"
ACCOUNTS_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{ACCOUNTS}"
DEDUP = "PaymentPosting-dev-IngestDedup"
DEDUP_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{DEDUP}"
STREAM_ARN = f"{LEDGER_ARN}/stream/2024-05-01T12:00:00.000"
QUEUE = "PaymentPosting-dev-PostingQueue"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{QUEUE}"
PLAIN_QUEUE = "PaymentPosting-dev-SampleQueue"
PLAIN_QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{PLAIN_QUEUE}"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:PaymentPosting-dev-ScreeningAlerts"
BUS = "PaymentPostingdevIngestEventBusCDA19752"
BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS}"
DEFAULT_BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{BUS}/PaymentPosting-dev-PostingRule"
FUNCTION = "PaymentPosting-dev-PostingPoster"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:PaymentPosting-dev-Rules"
PIPE_ARN = f"arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/PaymentPosting-dev-IngestPipe"
PLAIN_PIPE_ARN = f"arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/PaymentPosting-dev-SamplePipe"

DYNAMODB_VIA = {
    "kms:ViaService": (f"dynamodb.{REGION}.amazonaws.com",),
    "kms:CallerAccount": (ACCOUNT,),
}
SQS_VIA = {"kms:ViaService": (f"sqs.{REGION}.amazonaws.com",), "kms:CallerAccount": (ACCOUNT,)}
SNS_VIA = {"kms:ViaService": (f"sns.{REGION}.amazonaws.com",), "kms:CallerAccount": (ACCOUNT,)}
EVENTS = Caller("service", EVENTS_SERVICE, ACCOUNT)


def _model() -> AccessModel:
    """The ledger table, its stream, the posting queue, the alert topic and the ingest bus are
    encrypted under the stack's key; the accounts table and sample queue are not."""
    return AccessModel(
        account=ACCOUNT,
        region=REGION,
        encryption={
            LEDGER_ARN: KEY_ARN,
            STREAM_ARN: KEY_ARN,
            DEDUP_ARN: KEY_ARN,
            QUEUE_ARN: KEY_ARN,
            TOPIC_ARN: KEY_ARN,
            BUS_ARN: KEY_ARN,
            PIPE_ARN: KEY_ARN,
        },
    )


def _pairs(checks: Sequence[Check]) -> list[tuple[str, str]]:
    return [(c.action, c.resource) for c in checks]


def _checks(prefix: str, operation: str, params: Mapping[str, Any]) -> list[Check]:
    return checks_for_call(_model(), prefix, operation, params)


# -- DynamoDB ------------------------------------------------------------------------------


def test_transact_write_items_are_checked_per_item_action_on_their_tables() -> None:
    checks = _checks(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"ConditionCheck": {"TableName": ACCOUNTS, "Key": {}}},
                {"Put": {"TableName": LEDGER, "Item": {}}},
                {"Update": {"TableName": ACCOUNTS, "Key": {}}},
                {"Update": {"TableName": LEDGER, "Key": {}}},
                {"Delete": {"TableName": DEDUP_ARN, "Key": {}}},  # a table ARN is accepted too
            ]
        },
    )
    assert _pairs(checks) == [
        ("dynamodb:ConditionCheckItem", ACCOUNTS_ARN),
        ("dynamodb:PutItem", LEDGER_ARN),
        ("dynamodb:UpdateItem", ACCOUNTS_ARN),
        ("dynamodb:UpdateItem", LEDGER_ARN),
        ("dynamodb:DeleteItem", DEDUP_ARN),
        # The key of each encrypted table (ledger, dedup), once per table, after the items.
        ("kms:Decrypt", KEY_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]
    assert "dynamodb:TransactWriteItems" not in {c.action for c in checks}
    assert all(dict(c.context) == DYNAMODB_VIA for c in checks if c.action.startswith("kms:"))


def test_transact_get_items_are_checked_as_get_item() -> None:
    checks = _checks(
        "dynamodb",
        "TransactGetItems",
        {"TransactItems": [{"Get": {"TableName": ACCOUNTS, "Key": {}}}]},
    )
    assert _pairs(checks) == [("dynamodb:GetItem", ACCOUNTS_ARN)]


def test_batch_write_item_is_checked_once_per_table() -> None:
    checks = _checks(
        "dynamodb",
        "BatchWriteItem",
        {"RequestItems": {LEDGER: [{"PutRequest": {}}] * 3, ACCOUNTS: [{"DeleteRequest": {}}]}},
    )
    assert _pairs(checks) == [
        ("dynamodb:BatchWriteItem", LEDGER_ARN),
        ("dynamodb:BatchWriteItem", ACCOUNTS_ARN),
        ("kms:Decrypt", KEY_ARN),  # only the ledger is encrypted
    ]


def test_item_call_on_encrypted_table_needs_kms_decrypt_via_dynamodb() -> None:
    [item, key] = _checks("dynamodb", "PutItem", {"TableName": LEDGER, "Item": {}})
    assert (item.action, item.resource, item.caller) == ("dynamodb:PutItem", LEDGER_ARN, None)
    assert (key.action, key.resource) == ("kms:Decrypt", KEY_ARN)
    assert dict(key.context) == DYNAMODB_VIA
    assert key.caller is None  # DynamoDB asks KMS on the caller's behalf


def test_item_call_on_unencrypted_table_needs_no_key() -> None:
    checks = _checks("dynamodb", "GetItem", {"TableName": ACCOUNTS, "Key": {}})
    assert _pairs(checks) == [("dynamodb:GetItem", ACCOUNTS_ARN)]


def test_query_on_an_index_is_checked_on_the_index_and_decrypts_with_the_table_key() -> None:
    checks = _checks("dynamodb", "Query", {"TableName": LEDGER, "IndexName": "byAccount"})
    assert _pairs(checks) == [
        ("dynamodb:Query", f"{LEDGER_ARN}/index/byAccount"),
        ("kms:Decrypt", KEY_ARN),
    ]


def test_control_plane_call_on_encrypted_table_needs_no_key() -> None:
    checks = _checks("dynamodb", "DescribeTable", {"TableName": LEDGER})
    assert _pairs(checks) == [("dynamodb:DescribeTable", LEDGER_ARN)]


def test_stream_calls_are_checked_on_the_stream_and_reading_records_decrypts() -> None:
    assert _pairs(_checks("dynamodb", "DescribeStream", {"StreamArn": STREAM_ARN})) == [
        ("dynamodb:DescribeStream", STREAM_ARN)
    ]
    iterator = f"{STREAM_ARN}|1|AAAAAAAAAAGdcZ5c"  # moto's shard iterators carry the ARN
    assert _pairs(_checks("dynamodb", "GetRecords", {"ShardIterator": iterator})) == [
        ("dynamodb:GetRecords", STREAM_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]


def test_dynamodb_call_without_a_table_is_checked_on_every_resource() -> None:
    assert _pairs(_checks("dynamodb", "ListTables", {})) == [("dynamodb:ListTables", "*")]


# -- SQS -----------------------------------------------------------------------------------


def test_send_message_to_encrypted_queue_needs_generate_data_key_and_decrypt() -> None:
    checks = _checks("sqs", "SendMessage", {"QueueUrl": QUEUE_URL, "MessageBody": "{}"})
    assert _pairs(checks) == [
        ("sqs:SendMessage", QUEUE_ARN),
        ("kms:GenerateDataKey", KEY_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]
    assert all(dict(c.context) == SQS_VIA for c in checks[1:])


def test_send_message_batch_is_checked_as_send_message() -> None:
    checks = _checks("sqs", "SendMessageBatch", {"QueueUrl": QUEUE_URL, "Entries": []})
    assert _pairs(checks) == [
        ("sqs:SendMessage", QUEUE_ARN),
        ("kms:GenerateDataKey", KEY_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("DeleteMessageBatch", "sqs:DeleteMessage"),
        ("ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility"),
    ],
)
def test_other_sqs_batches_are_checked_under_the_single_action(operation: str, action: str) -> None:
    assert _pairs(_checks("sqs", operation, {"QueueUrl": QUEUE_URL, "Entries": []})) == [
        (action, QUEUE_ARN)
    ]


def test_receive_message_from_encrypted_queue_needs_only_decrypt() -> None:
    checks = _checks("sqs", "ReceiveMessage", {"QueueUrl": QUEUE_URL})
    assert _pairs(checks) == [("sqs:ReceiveMessage", QUEUE_ARN), ("kms:Decrypt", KEY_ARN)]
    assert dict(checks[1].context) == SQS_VIA


def test_delete_message_needs_no_key() -> None:
    checks = _checks("sqs", "DeleteMessage", {"QueueUrl": QUEUE_URL, "ReceiptHandle": "abc"})
    assert _pairs(checks) == [("sqs:DeleteMessage", QUEUE_ARN)]


def test_send_message_to_unencrypted_queue_needs_no_key() -> None:
    checks = _checks("sqs", "SendMessage", {"QueueUrl": PLAIN_QUEUE_URL, "MessageBody": "{}"})
    assert _pairs(checks) == [("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{PLAIN_QUEUE}")]


def test_queue_arn_comes_from_the_url_account_or_the_queue_name() -> None:
    local_url = f"http://localhost:5000/{ACCOUNT}/{QUEUE}/"
    assert _pairs(_checks("sqs", "GetQueueAttributes", {"QueueUrl": local_url})) == [
        ("sqs:GetQueueAttributes", QUEUE_ARN)
    ]
    assert _pairs(_checks("sqs", "GetQueueUrl", {"QueueName": QUEUE})) == [
        ("sqs:GetQueueUrl", QUEUE_ARN)
    ]
    assert _pairs(_checks("sqs", "ListQueues", {})) == [("sqs:ListQueues", "*")]


def test_a_redrive_is_checked_for_what_the_move_task_does_in_the_callers_name() -> None:
    dead_letters = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{PLAIN_QUEUE}"
    checks = _checks(
        "sqs", "StartMessageMoveTask", {"SourceArn": dead_letters, "DestinationArn": QUEUE_ARN}
    )
    assert _pairs(checks) == [
        ("sqs:StartMessageMoveTask", dead_letters),
        ("sqs:ReceiveMessage", dead_letters),
        ("sqs:DeleteMessage", dead_letters),
        ("sqs:GetQueueAttributes", dead_letters),
        # An unencrypted source needs no key; the encrypted destination, the sender's.
        ("sqs:SendMessage", QUEUE_ARN),
        ("kms:GenerateDataKey", KEY_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]
    assert all(dict(c.context) == SQS_VIA for c in checks[5:])


def test_a_redrive_decrypts_an_encrypted_source_and_without_destination_sends_anywhere() -> None:
    checks = _checks("sqs", "StartMessageMoveTask", {"SourceArn": QUEUE_ARN})
    assert _pairs(checks) == [
        ("sqs:StartMessageMoveTask", QUEUE_ARN),
        ("sqs:ReceiveMessage", QUEUE_ARN),
        ("sqs:DeleteMessage", QUEUE_ARN),
        ("sqs:GetQueueAttributes", QUEUE_ARN),
        ("kms:Decrypt", KEY_ARN),
        ("sqs:SendMessage", "*"),
    ]
    assert _pairs(_checks("sqs", "ListMessageMoveTasks", {"SourceArn": QUEUE_ARN})) == [
        ("sqs:ListMessageMoveTasks", QUEUE_ARN)
    ]


# -- SNS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["Publish", "PublishBatch"])
def test_publish_to_encrypted_topic_needs_generate_data_key_and_decrypt(operation: str) -> None:
    checks = _checks("sns", operation, {"TopicArn": TOPIC_ARN})
    assert _pairs(checks) == [
        ("sns:Publish", TOPIC_ARN),
        ("kms:GenerateDataKey", KEY_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]
    assert all(dict(c.context) == SNS_VIA for c in checks[1:])


def test_topic_management_call_needs_no_key() -> None:
    checks = _checks("sns", "GetTopicAttributes", {"TopicArn": TOPIC_ARN})
    assert _pairs(checks) == [("sns:GetTopicAttributes", TOPIC_ARN)]


# -- EventBridge ---------------------------------------------------------------------------


def test_put_events_is_checked_per_entry_with_source_and_detail_type() -> None:
    checks = _checks(
        "events",
        "PutEvents",
        {
            "Entries": [
                {"EventBusName": BUS, "Source": "payments.ingest", "DetailType": "PaymentReceived"},
                {"EventBusName": BUS_ARN, "Source": "payments.ingest", "DetailType": "Duplicate"},
                {"Source": "payments.audit", "DetailType": "PaymentReceived"},  # default bus
            ]
        },
    )
    entries = [c for c in checks if c.action == "events:PutEvents"]
    assert [(c.resource, dict(c.context)) for c in entries] == [
        (
            BUS_ARN,
            {"events:source": ("payments.ingest",), "events:detail-type": ("PaymentReceived",)},
        ),
        (BUS_ARN, {"events:source": ("payments.ingest",), "events:detail-type": ("Duplicate",)}),
        (
            DEFAULT_BUS_ARN,
            {"events:source": ("payments.audit",), "events:detail-type": ("PaymentReceived",)},
        ),
    ]
    assert all(c.caller is None for c in entries)


def test_put_events_on_encrypted_bus_adds_one_key_check_made_by_eventbridge() -> None:
    checks = _checks(
        "events",
        "PutEvents",
        {
            "Entries": [
                {"EventBusName": BUS, "Source": "payments.ingest", "DetailType": "A"},
                {"EventBusName": BUS, "Source": "payments.ingest", "DetailType": "B"},
            ]
        },
    )
    assert _pairs(checks) == [
        ("events:PutEvents", BUS_ARN),
        ("events:PutEvents", BUS_ARN),
        ("kms:GenerateDataKey", KEY_ARN),  # once per bus, after the entries
    ]
    key = checks[-1]
    assert key.caller == EVENTS
    assert dict(key.context) == {
        "aws:SourceArn": (BUS_ARN,),
        "aws:SourceAccount": (ACCOUNT,),
        BUS_CONTEXT_KEY: (BUS_ARN,),
    }


def test_put_events_on_default_bus_needs_no_key() -> None:
    checks = _checks("events", "PutEvents", {"Entries": [{"Source": "s", "DetailType": "d"}]})
    assert _pairs(checks) == [("events:PutEvents", DEFAULT_BUS_ARN)]


def test_put_events_on_bus_with_encrypted_archive_adds_the_archive_key() -> None:
    model = _model()
    model.archive_keys[BUS_ARN] = ARCHIVE_KEY_ARN
    checks = checks_for_call(
        model, "events", "PutEvents", {"Entries": [{"EventBusName": BUS, "Source": "s"}]}
    )
    assert _pairs(checks) == [
        ("events:PutEvents", BUS_ARN),
        ("kms:GenerateDataKey", KEY_ARN),
        ("kms:GenerateDataKey", ARCHIVE_KEY_ARN),
    ]
    assert checks[-1].caller == EVENTS


def test_bus_management_call_is_checked_on_the_bus() -> None:
    assert _pairs(_checks("events", "DescribeEventBus", {"Name": BUS})) == [
        ("events:DescribeEventBus", BUS_ARN)
    ]


def test_rule_operation_is_checked_on_the_rule() -> None:
    rule = "PaymentPosting-dev-PostingRule"
    assert _pairs(_checks("events", "DescribeRule", {"Name": rule, "EventBusName": BUS})) == [
        ("events:DescribeRule", RULE_ARN)
    ]


def test_eventbridge_delivery_to_encrypted_queue_is_checked_as_the_service() -> None:
    checks = service_delivery_checks(_model(), QUEUE_ARN, "sqs:SendMessage", RULE_ARN)
    assert _pairs(checks) == [
        ("sqs:SendMessage", QUEUE_ARN),
        ("kms:GenerateDataKey", KEY_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]
    assert all(c.caller == EVENTS for c in checks)
    assert all(c.context["aws:SourceArn"] == (RULE_ARN,) for c in checks)
    assert all(c.context["aws:SourceAccount"] == (ACCOUNT,) for c in checks)
    assert checks[1].context["kms:ViaService"] == (f"sqs.{REGION}.amazonaws.com",)


def test_eventbridge_delivery_to_a_function_needs_no_key() -> None:
    checks = service_delivery_checks(_model(), FUNCTION_ARN, "lambda:InvokeFunction", RULE_ARN)
    assert _pairs(checks) == [("lambda:InvokeFunction", FUNCTION_ARN)]


def test_reading_events_of_an_encrypted_bus_is_eventbridge_decrypting() -> None:
    [check] = bus_read_checks(_model(), BUS_ARN)
    assert (check.action, check.resource, check.caller) == ("kms:Decrypt", KEY_ARN, EVENTS)
    assert check.context[BUS_CONTEXT_KEY] == (BUS_ARN,)
    assert bus_read_checks(_model(), DEFAULT_BUS_ARN) == []


# -- EventBridge Pipes ----------------------------------------------------------------------


def test_reading_an_encrypted_pipe_definition_is_its_role_decrypting_pipe_data() -> None:
    [check] = pipe_definition_checks(_model(), PIPE_ARN)
    assert (check.action, check.resource, check.caller) == ("kms:Decrypt", KEY_ARN, None)
    # The context Pipes documents, which a key policy binds the role's use of the key to.
    assert check.context["kms:EncryptionContext:aws:pipe:arn"] == (PIPE_ARN,)
    assert check.context["kms:EncryptionContextKeys"] == ("aws:pipe:arn",)
    assert check.context["kms:ViaService"] == (f"pipes.{REGION}.amazonaws.com",)


def test_a_pipe_with_the_aws_owned_key_needs_no_key_permission() -> None:
    assert pipe_definition_checks(_model(), PLAIN_PIPE_ARN) == []


# -- Lambda, Step Functions, KMS, STS and the rest -----------------------------------------


@pytest.mark.parametrize(
    ("params", "resource"),
    [
        ({"FunctionName": FUNCTION}, FUNCTION_ARN),
        ({"FunctionName": FUNCTION_ARN}, FUNCTION_ARN),
        ({"FunctionName": f"{ACCOUNT}:function:{FUNCTION}"}, FUNCTION_ARN),  # partial ARN
        ({"FunctionName": FUNCTION, "Qualifier": "live"}, f"{FUNCTION_ARN}:live"),
        ({"FunctionName": f"{FUNCTION}:live"}, f"{FUNCTION_ARN}:live"),  # name with alias
        ({"FunctionName": f"{FUNCTION_ARN}:7", "Qualifier": "7"}, f"{FUNCTION_ARN}:7"),
    ],
)
def test_lambda_invoke_is_checked_as_invoke_function(params: dict[str, Any], resource: str) -> None:
    assert _pairs(_checks("lambda", "Invoke", {**params, "Payload": b"{}"})) == [
        ("lambda:InvokeFunction", resource)
    ]


def test_lambda_invoke_async_is_checked_as_invoke_function() -> None:
    assert _pairs(_checks("lambda", "InvokeAsync", {"FunctionName": FUNCTION})) == [
        ("lambda:InvokeFunction", FUNCTION_ARN)
    ]


def test_start_execution_is_checked_on_the_state_machine() -> None:
    checks = _checks("states", "StartExecution", {"stateMachineArn": STATE_MACHINE_ARN})
    assert _pairs(checks) == [("states:StartExecution", STATE_MACHINE_ARN)]


def test_direct_kms_call_is_checked_on_the_key_without_via_service() -> None:
    model = _model()
    model.key_policies[KEY_ARN] = parse_document("IngestKey key policy", {"Statement": []})
    [by_id] = checks_for_call(model, "kms", "Decrypt", {"KeyId": KEY_ARN.rsplit("/", 1)[1]})
    assert (by_id.action, by_id.resource) == ("kms:Decrypt", KEY_ARN)
    assert "kms:ViaService" not in by_id.context
    [by_arn] = checks_for_call(model, "kms", "DescribeKey", {"KeyId": KEY_ARN})
    assert (by_arn.action, by_arn.resource) == ("kms:DescribeKey", KEY_ARN)


def test_get_caller_identity_needs_no_permission() -> None:
    assert _checks("sts", "GetCallerIdentity", {}) == []


@pytest.mark.parametrize(
    ("prefix", "operation"),
    [("secretsmanager", "GetSecretValue"), ("ssm", "GetParameter"), ("sts", "AssumeRole")],
)
def test_unknown_operation_is_checked_under_its_own_name_on_every_resource(
    prefix: str, operation: str
) -> None:
    assert _pairs(_checks(prefix, operation, {"Name": "anything"})) == [
        (f"{prefix}:{operation}", "*")
    ]


# Secrets Manager

SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:CoreBankingCredentials-AbC123"


def _secret_model(encrypted: bool) -> AccessModel:
    model = AccessModel(account=ACCOUNT, region=REGION)
    model.secrets_by_name["CoreBankingCredentials"] = SECRET_ARN
    if encrypted:
        model.encryption[SECRET_ARN] = KEY_ARN
    return model


@pytest.mark.parametrize("secret_id", [SECRET_ARN, "CoreBankingCredentials"])
def test_reading_a_secret_is_checked_on_its_arn_and_its_key_through_secrets_manager(
    secret_id: str,
) -> None:
    checks = checks_for_call(
        _secret_model(encrypted=True), "secretsmanager", "GetSecretValue", {"SecretId": secret_id}
    )

    assert [(c.action, c.resource) for c in checks] == [
        ("secretsmanager:GetSecretValue", SECRET_ARN),
        ("kms:Decrypt", KEY_ARN),
    ]
    assert checks[1].context["kms:ViaService"] == (f"secretsmanager.{REGION}.amazonaws.com",)


def test_a_secret_without_a_key_of_its_own_needs_no_key_check() -> None:
    checks = checks_for_call(
        _secret_model(encrypted=False), "secretsmanager", "GetSecretValue", {"SecretId": SECRET_ARN}
    )

    assert [(c.action, c.resource) for c in checks] == [
        ("secretsmanager:GetSecretValue", SECRET_ARN)
    ]


def test_describing_a_secret_needs_no_key() -> None:
    checks = checks_for_call(
        _secret_model(encrypted=True), "secretsmanager", "DescribeSecret", {"SecretId": SECRET_ARN}
    )

    assert [(c.action, c.resource) for c in checks] == [
        ("secretsmanager:DescribeSecret", SECRET_ARN)
    ]
