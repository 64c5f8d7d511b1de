"""The boto3 clients the local runtime uses, created once (creating one costs milliseconds)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3


class AwsClients:
    """Lazily created clients for the services the runtime drives; all talk to moto."""

    def __init__(self, region: str) -> None:
        self.region = region

    def _client(self, service: str) -> Any:
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
