"""The botocore hook: a refused call fails as the service answers it, before moto serves it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from payment_local.access import botocore_hook
from payment_local.access.authorizer import Authorizer
from payment_local.access.model import AccessModel, Role
from payment_local.access.policy import parse_document
from tests.local.support import ACCOUNT, REGION

ROLE = f"arn:aws:iam::{ACCOUNT}:role/Writer"
TABLE = "ledger"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/q"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:t"


@pytest.fixture
def authorizer() -> Iterator[Authorizer]:
    botocore_hook.install()
    grants = parse_document(
        "Writer policy",
        {"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE_ARN}]},
    )
    model = AccessModel(
        account=ACCOUNT, region=REGION, roles={ROLE: Role("Writer", ROLE, None, [grants])}
    )
    access = Authorizer(model)
    with mock_aws():
        plumbing = boto3.client("dynamodb", region_name=REGION)
        plumbing.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # As the runtime does: the credentials of its environment are its plumbing.
        access.plumbing_keys.add(os.environ.get("AWS_ACCESS_KEY_ID"))
        botocore_hook.activate(access)
        try:
            yield access
        finally:
            botocore_hook.activate(None)


def _client_as(access: Authorizer, service: str, role: str = ROLE) -> Any:
    credentials = access.credentials_for(role)
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.session_token,
        region_name=REGION,
    ).client(service)


def test_a_refused_write_raises_the_services_own_error_and_is_not_served(
    authorizer: Authorizer,
) -> None:
    client = _client_as(authorizer, "dynamodb")

    with pytest.raises(client.exceptions.ClientError) as raised:
        client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})

    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "assumed-role/Writer" in error["Message"]
    assert f"dynamodb:PutItem on resource: {TABLE_ARN}" in error["Message"]
    # moto never saw the call: nothing was written.
    plumbing = boto3.client("dynamodb", region_name=REGION)
    assert plumbing.scan(TableName=TABLE)["Count"] == 0
    [denial] = authorizer.denials()
    assert (denial.principal, denial.action, denial.count) == ("role Writer", "dynamodb:PutItem", 1)


def test_an_allowed_call_is_served(authorizer: Authorizer) -> None:
    client = _client_as(authorizer, "dynamodb")

    assert "Item" not in client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
    assert authorizer.denials() == []


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("sqs", lambda c: c.get_queue_attributes(QueueUrl=QUEUE_URL), "AccessDenied"),
        ("sns", lambda c: c.publish(TopicArn=TOPIC_ARN, Message="x"), "AuthorizationError"),
    ],
)
def test_each_service_answers_with_its_own_error_code(
    authorizer: Authorizer, service: str, call: Any, code: str
) -> None:
    with pytest.raises(ClientError) as raised:
        call(_client_as(authorizer, service))
    assert raised.value.response["Error"]["Code"] == code


def test_credentials_that_identify_nobody_are_refused(authorizer: Authorizer) -> None:
    stranger = boto3.session.Session(
        aws_access_key_id="AKIASTRANGER", aws_secret_access_key="x", region_name=REGION
    ).client("dynamodb")

    with pytest.raises(ClientError, match="cannot tell which principal"):
        stranger.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})


def test_with_enforcement_off_nothing_is_checked(authorizer: Authorizer) -> None:
    authorizer.enforce = False
    _client_as(authorizer, "dynamodb").put_item(TableName=TABLE, Item={"pk": {"S": "a"}})
    assert authorizer.decided == {}
