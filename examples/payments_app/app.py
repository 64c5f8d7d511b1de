#!/usr/bin/env python3
"""A payments app as a user of the constructs writes it, with the wheel installed (``make dist``).

The app owns its event bus and its key; the constructs attach to them: ``IngestPipe`` publishes
authorized transactions on that bus, ``RulesEngine`` runs this app's own rules
(``rules.asl.json``), and ``BufferedPoster`` posts what the rules approve to the bank's core
system over HTTPS, with a token it reads from Secrets Manager (the secret exists already: the
core-banking team owns and rotates it).
Every synth runs the cdk-nag AwsSolutions pack; a finding fails it.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from payment_stack import (
    BufferedPoster,
    CoreBankingCredentials,
    IngestPipe,
    PostingTarget,
    RulesEngine,
)

HERE = Path(__file__).resolve().parent


class PaymentsStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "PaymentsKey",
            description="Our payment data: the bus, the tables and the queues",
            enable_key_rotation=True,
        )
        bus = events.EventBus(self, "PaymentsBus", kms_key=key)

        IngestPipe(self, "Ingest", event_bus=bus, encryption_key=key)
        RulesEngine(
            self,
            "Rules",
            event_bus=bus,
            encryption_key=key,
            definition_file=HERE / "rules.asl.json",
            high_value_threshold=500_000,  # minor units: 5,000.00
        )
        token = secretsmanager.Secret.from_secret_name_v2(
            self, "CoreBankingToken", "payments/core-banking-token"
        )
        BufferedPoster(
            self,
            "Posting",
            event_bus=bus,
            encryption_key=key,
            posting_target=PostingTarget.http(
                "https://core.bank.example/api",
                credentials=CoreBankingCredentials(token),  # Authorization: Bearer <token>
            ),
        )


app = cdk.App()
PaymentsStack(app, "ExamplePayments")
# cdk-nag 3 checks through the CDK's Validations; `Aspects.of(app).add(AwsSolutionsChecks())`
# is the cdk-nag 2 form and fails with cdk-nag 3.
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
app.synth()
