"""The boto3 clients the local runtime uses, created once (creating one costs milliseconds)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3

from payment_local.access.authorizer import Credentials


class AwsClients:
    """Lazily created clients for the services the runtime drives; all talk to moto.

    With ``credentials``, every call is signed as the principal they identify (a pipe's or a
    rule target's role), so the local access check authorizes it as that principal.
    """

    def __init__(self, region: str, credentials: Credentials | None = None) -> None:
        self.region = region
        self._session = (
            boto3.session.Session(
                aws_access_key_id=credentials.access_key,
                aws_secret_access_key=credentials.secret_key,
                aws_session_token=credentials.session_token,
                region_name=region,
            )
            if credentials
            else None
        )

    def _client(self, service: str) -> Any:
        if self._session is not None:
            return self._session.client(service)
        return boto3.client(service, region_name=self.region)

    @cached_property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @cached_property
    def dynamodbstreams(self) -> Any:
        return self._client("dynamodbstreams")

    @cached_property
    def sqs(self) -> Any:
        return self._client("sqs")

    @cached_property
    def events(self) -> Any:
        return self._client("events")

    @cached_property
    def sns(self) -> Any:
        return self._client("sns")

    @cached_property
    def stepfunctions(self) -> Any:
        return self._client("stepfunctions")

    @cached_property
    def kms(self) -> Any:
        return self._client("kms")

    @cached_property
    def secretsmanager(self) -> Any:
        return self._client("secretsmanager")
