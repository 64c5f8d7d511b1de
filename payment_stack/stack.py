"""The payment-posting stack: the reusable constructs composed into one deployable unit."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnParameter, Duration, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from payment_stack import dashboards as widgets
from payment_stack.alarms import (
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    ConstructAlarms,
    powertools_metric,
    stack_alarm_prefix,
)
from payment_stack.alarms import (
    operations_topic as new_operations_topic,
)
from payment_stack.buffered_poster import END_TO_END_LATENCY_METRIC, BufferedPoster
from payment_stack.config import StageConfig
from payment_stack.core_banking_network import NETWORK_CONTEXT_KEYS, network_from_context
from payment_stack.ingest_pipe import IngestPipe
from payment_stack.keys import domain_key
from payment_stack.nag import (
    NIST_800_53_R5,
    acknowledge,
    acknowledge_in_packs,
    acknowledge_outside_vpc,
)
from payment_stack.payment_function import PaymentFunction
from payment_stack.posting_target import (
    CA_BUNDLE_ENVIRONMENT_LIMIT,
    CaBundle,
    CoreBankingClientCertificate,
    CoreBankingCredentials,
    CoreBankingNetwork,
    PostingTarget,
)
from payment_stack.processors import EnrichmentProcessor, ScreeningOutcomes
from payment_stack.rules_engine import RulesEngine

# ``-c posting=http``: post to a core system over HTTPS (its URL and CA as stack parameters, its
# credential in a secret the stack creates) instead of the built-in ledger.
POSTING_CONTEXT_KEY = "posting"
# ``-c coreBankingMtls=true`` (with ``posting=http``): also present a client certificate from
# a second secret the stack creates (mutual TLS).
MTLS_CONTEXT_KEY = "coreBankingMtls"


class PaymentPostingStack(Stack):
    """Authorized transactions in, lifecycle events out, on one payments event bus.

    One customer-managed key per data domain (docs/adr/0010-keys-per-data-domain.md):
    transaction data (the ingest pipe's key, which also encrypts every queue of lifecycle
    events), the ledger (with the account directory) and operations (failure records of the
    pipe, notifications, logs); the bus archive has a key of its own.

    Every construct's alarms are on (docs/adr/0020-alarms-and-dashboards-by-default.md) and
    notify one operations topic; one dashboard, ``<stack name>``, shows the three stages
    (ingest, rules, posting) in the order a transaction flows through them.
    ``alarms=False`` turns every alarm off; ``operations_topic`` is a topic of yours to notify
    instead of the one the stack creates (it must let cloudwatch.amazonaws.com publish:
    ``payment_stack.alarms.allow_alarms_to_publish``); ``dashboards=False`` creates none.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        alarms: bool = True,
        operations_topic: sns.ITopic | None = None,
        dashboards: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Event-driven payment posting: ingest, rules and posting of transactions",
            **kwargs,
        )
        Tags.of(self).add("project", "payment-posting")
        Tags.of(self).add("stage", config.name)
        # Before any construct: each reads its log level and tracing from here.
        config.observability.apply(self)

        self.ledger_key = domain_key(
            self,
            "LedgerKey",
            description="Encrypts the ledger and the account directory",
            removal_policy=config.removal_policy,
        )
        self.operations_key = domain_key(
            self,
            "OperationsKey",
            description="Encrypts operational data: the pipe's failure records, "
            "notifications, logs",
            removal_policy=config.removal_policy,
        )
        # Created only when something alarms: a stack with every alarm off has no topic.
        self.operations_topic: sns.ITopic | None = operations_topic or (
            new_operations_topic(self, "OperationsTopic", self.operations_key) if alarms else None
        )
        observe: dict[str, Any] = {"alarms": alarms, "alarm_topic": self.operations_topic}
        # One dashboard for the three stages: a transaction's flow read top to bottom, and one
        # dashboard's price, not three (ADR 0023).
        self.dashboard: cloudwatch.Dashboard | None = (
            cloudwatch.Dashboard(
                self,
                "Dashboard",
                dashboard_name=self.stack_name,
                default_interval=Duration.hours(3),
            )
            if dashboards
            else None
        )
        board: bool | cloudwatch.Dashboard = self.dashboard or False
        self.ingest = IngestPipe(
            self,
            "Ingest",
            operations_key=self.operations_key,
            removal_policy=config.removal_policy,
            data_retention=Duration.days(config.data_retention_days),
            archive_retention=Duration.days(config.archive_retention_days),
            log_retention=config.log_retention,
            dashboard=board,
            **observe,
        )

        self.transactions_key = self.ingest.encryption_key
        bus = self.ingest.event_bus
        self.enrichment = EnrichmentProcessor(
            self,
            "Enrichment",
            event_bus=bus,
            accounts_key=self.ledger_key,
            encryption_key=self.transactions_key,
            operations_key=self.operations_key,
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
            **observe,
        )
        self.screening_outcomes = ScreeningOutcomes(
            self,
            "ScreeningOutcomes",
            event_bus=bus,
            encryption_key=self.transactions_key,
            operations_key=self.operations_key,
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
            **observe,
        )
        self._add_processors_to_ingest_dashboard()
        self.rules_engine = RulesEngine(
            self,
            "RulesEngine",
            event_bus=bus,
            encryption_key=self.transactions_key,
            operations_key=self.operations_key,
            # A held transaction's review holds its data: kept no longer than the records.
            pending_review_retention=Duration.days(config.data_retention_days),
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
            dashboard=board,
            **observe,
        )

        posting = self.node.try_get_context(POSTING_CONTEXT_KEY) or "ledger"
        if posting not in ("ledger", "http"):
            raise ValueError(f"-c {POSTING_CONTEXT_KEY}= must be ledger or http, got {posting!r}")
        mtls = self.node.try_get_context(MTLS_CONTEXT_KEY)
        if mtls not in (None, True, False, "true", "false"):
            raise ValueError(f"-c {MTLS_CONTEXT_KEY}= must be true or false, got {mtls!r}")
        mutual_tls = mtls in (True, "true")
        if mutual_tls and posting != "http":
            raise ValueError(f"-c {MTLS_CONTEXT_KEY}=true needs -c {POSTING_CONTEXT_KEY}=http")
        self.core_banking_secret: secretsmanager.Secret | None = None
        self.client_certificate_secret: secretsmanager.Secret | None = None
        target = PostingTarget.ledger()
        network = network_from_context(self)
        if network is not None and posting != "http":
            raise ValueError(
                f"-c {', -c '.join(NETWORK_CONTEXT_KEYS)} place the posting function for the "
                f"core system: they need -c {POSTING_CONTEXT_KEY}=http"
            )
        if posting == "http":
            target, self.core_banking_secret, self.client_certificate_secret = self._core_banking(
                config, network, mutual_tls=mutual_tls
            )
        self.poster = BufferedPoster(
            self,
            "Posting",
            event_bus=bus,
            posting_target=target,
            ledger_key=self.ledger_key if posting == "ledger" else None,
            max_batching_window=(
                Duration.seconds(config.posting_batching_window_seconds)
                if config.posting_batching_window_seconds
                else None
            ),
            encryption_key=self.transactions_key,
            operations_key=self.operations_key,
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
            dashboard=board,
            **observe,
        )

        if posting == "http" and network is None:
            acknowledge_in_packs(
                self.poster.function,
                "LambdaInsideVPC",
                "The stack's variant for running the HTTP posting path (-c posting=http): the "
                "core system's address is a deploy-time parameter and this variant sets no "
                "network placement (locally the core system is on 127.0.0.1). The call is TLS "
                "verified against the CoreBankingCaBundle CA, with a token from Secrets "
                "Manager; a deployment to a bank's core system places the function with "
                "-c coreBankingVpcId=... (BufferedPoster's network), which this synth did not.",
            )

        self.sample_source: PaymentFunction | None = None
        if config.sample_source:
            self.sample_source = PaymentFunction(
                self,
                "SampleSource",
                handler="payment_posting_functions.handlers.source.handler",
                description="Sample source (visa-mock): writes generated transactions",
                service_name="sample-source",
                environment={
                    "TRANSACTIONS_TABLE_NAME": self.ingest.transactions_table.table_name,
                    "RETENTION_SECONDS": str(int(self.ingest.data_retention.to_seconds())),
                    "ACCOUNTS_TABLE_NAME": self.enrichment.accounts_table.table_name,
                },
                timeout=Duration.minutes(5),
                memory_size=512,
                log_retention=config.log_retention,
                log_removal_policy=config.removal_policy,
                log_encryption_key=self.operations_key,
            )
            # Both tables are loaded through boto3's batch writer (domain/*_table.py).
            self.ingest.grant_write_transactions(self.sample_source.role, "dynamodb:BatchWriteItem")
            self.enrichment.grant_write_accounts(self.sample_source.role, "dynamodb:BatchWriteItem")
            if self.poster.journal_table is not None and self.poster.balances_table is not None:
                # The built-in ledger posts only to accounts that are open: the sample source
                # opens the sample directory's accounts in it before it writes.
                self.sample_source.function.add_environment(
                    "LEDGER_BALANCES_TABLE_NAME", self.poster.balances_table.table_name
                )
                self.sample_source.function.add_environment(
                    "LEDGER_JOURNAL_TABLE_NAME", self.poster.journal_table.table_name
                )
                self.poster.grant_open_accounts(self.sample_source.role)
            self._acknowledge_sample_source(self.sample_source)
            # A development tool, but a function like the others: its failures alarm too.
            ConstructAlarms(
                self.sample_source,
                "PaymentPostingStack",
                alarms,
                {"function_errors": FUNCTION_ERRORS, "function_throttles": FUNCTION_THROTTLES},
                topic=self.operations_topic,
                key=self.operations_key,
            ).function("Function", self.sample_source.function)
            CfnOutput(
                self,
                "SampleSourceFunctionName",
                value=self.sample_source.function.function_name,
                description='Invoke with {"count": 100} to write sample transactions',
            )

        CfnOutput(self, "TransactionsTableName", value=self.ingest.transactions_table.table_name)
        CfnOutput(
            self,
            "TransactionRetentionSeconds",
            value=str(int(self.ingest.data_retention.to_seconds())),
            description="What a writer of the transactions table sets expiresAt to, from now",
        )
        CfnOutput(self, "QuarantineTableName", value=self.ingest.quarantine_table.table_name)
        CfnOutput(self, "EventBusName", value=self.ingest.event_bus.event_bus_name)
        CfnOutput(self, "AccountsTableName", value=self.enrichment.accounts_table.table_name)
        CfnOutput(
            self,
            "NotificationTopicArn",
            value=self.screening_outcomes.notification_topic.topic_arn,
        )
        CfnOutput(self, "RulesFailureTopicArn", value=self.rules_engine.failure_topic.topic_arn)
        CfnOutput(
            self, "RulesStateMachineArn", value=self.rules_engine.state_machine.state_machine_arn
        )
        if self.rules_engine.pending_reviews_table is not None:
            CfnOutput(
                self,
                "PendingReviewsTableName",
                value=self.rules_engine.pending_reviews_table.table_name,
                description="Transactions held for review, until a ReviewDecided event decides",
            )
        if self.poster.journal_table is not None and self.poster.balances_table is not None:
            CfnOutput(self, "LedgerJournalTableName", value=self.poster.journal_table.table_name)
            CfnOutput(self, "LedgerBalancesTableName", value=self.poster.balances_table.table_name)
        if self.core_banking_secret is not None:
            CfnOutput(
                self,
                "CoreBankingSecretArn",
                value=self.core_banking_secret.secret_arn,
                description="Put the core system's API token here (put-secret-value)",
            )
        if self.client_certificate_secret is not None:
            CfnOutput(
                self,
                "CoreBankingClientCertificateSecretArn",
                value=self.client_certificate_secret.secret_arn,
                description='Put {"certificate", "privateKey"} (PEM) here (put-secret-value)',
            )
        CfnOutput(self, "PostingQueueUrl", value=self.poster.queue.queue_url)
        self._operations_outputs()

    def dead_letter_queues(self) -> dict[str, tuple[sqs.IQueue, str]]:
        """Every dead-letter queue of the stack by its output name (``<Name>DeadLetterQueueUrl``
        without the suffix), with what lands there."""
        rule_target = (
            "rule-target events EventBridge could not deliver after its retries, and async "
            "invoke failures: events the function failed after Lambda's retries, with the error"
        )
        queues: dict[str, tuple[sqs.IQueue, str]] = {
            "Ingest": (
                self.ingest.dead_letter_queue,
                "pipe stream positions: batches of the transactions table's stream the ingest "
                "pipe failed after its retries (positions only; the records stay in the table)",
            ),
            "Enrichment": (self.enrichment.dead_letter_queue, rule_target),
            "ScreeningOutcomes": (self.screening_outcomes.dead_letter_queue, rule_target),
            "RulesEngine": (
                self.rules_engine.dead_letter_queue,
                "rule-target events: enriched transactions and review decisions the rule could "
                "not start the workflow for after EventBridge's retries",
            ),
            "Posting": (
                self.poster.dead_letter_queue,
                "posting queue messages: approved transactions that failed max_receive_count "
                "deliveries to the posting function, and rule-target events the rule could "
                "not put in the queue",
            ),
        }
        if self.ingest.bus_dead_letter_queue is not None:
            queues["IngestBus"] = (
                self.ingest.bus_dead_letter_queue,
                "events the payments bus could not deliver to a target (for example when it "
                "could not use its key)",
            )
        if self.poster.expiry_sweeper is not None:
            queues["PostingExpirySweeper"] = (
                self.poster.expiry_sweeper.dead_letter_queue,
                "async invoke failures: invocation records of ledger expiry sweeps that failed "
                "(no payment data; holds past their timeout are released by the next sweep)",
            )
        return queues

    def _operations_outputs(self) -> None:
        for name, (queue, holds) in self.dead_letter_queues().items():
            CfnOutput(
                self,
                f"{name}DeadLetterQueueUrl",
                value=queue.queue_url,
                description=f"Dead-letter queue: {holds}"[:1024],
            )
        if self.ingest.archive is not None:
            CfnOutput(
                self,
                "EventArchiveName",
                value=self.ingest.archive.archive_name,
                description="Archive of every lifecycle event on the bus, for replay",
            )
        if self.operations_topic is not None:
            CfnOutput(
                self,
                "OperationsTopicArn",
                value=self.operations_topic.topic_arn,
                description="Every alarm of the stack notifies this topic: subscribe on-call",
            )
        CfnOutput(
            self,
            "AlarmNamePrefix",
            value=stack_alarm_prefix(self),
            description="Every alarm of the stack is named with this prefix (docs/runbook.md)",
        )

    def _add_processors_to_ingest_dashboard(self) -> None:
        """The ingest stage ends in the processors: their outcomes, failures and queues."""
        board = self.ingest.dashboard
        if board is None:
            return
        enrich, outcomes = self.enrichment, self.screening_outcomes
        board.add_widgets(
            widgets.graph(
                "Enrichment and screening outcomes",
                [
                    widgets.labelled(powertools_metric(enrich.service_name, name), label)
                    for name, label in (
                        ("TransactionsEnriched", "Enriched"),
                        ("UnknownAccounts", "Unknown account"),
                    )
                ]
                + [
                    widgets.labelled(powertools_metric(outcomes.service_name, name), label)
                    for name, label in (
                        ("DuplicatesFlagged", "Duplicate flagged (terminal)"),
                        ("TransactionsQuarantined", "Quarantined (terminal)"),
                    )
                ],
            ),
            widgets.percentiles(
                "Latency to a screening outcome (ms, authorization to outcome)",
                lambda stat: powertools_metric(
                    outcomes.service_name, END_TO_END_LATENCY_METRIC, stat
                ).with_(label=stat),
            ),
            widgets.queue_depths(
                [("Enrichment", enrich.dead_letter_queue),
                 ("ScreeningOutcomes", outcomes.dead_letter_queue)]
            ),
        )  # fmt: skip
        board.add_widgets(
            widgets.graph(
                "Processor failures",
                [
                    metric
                    for name, processor in (("Enrichment", enrich), ("Screening", outcomes))
                    for metric in (
                        processor.metric_errors(label=f"{name} errors"),
                        processor.metric_throttles(label=f"{name} throttles"),
                    )
                ],
            ),
        )
        processor_alarms = enrich.alarms.alarms + outcomes.alarms.alarms
        if processor_alarms:
            board.add_widgets(widgets.alarm_states(processor_alarms))

    def _core_banking(
        self, config: StageConfig, network: CoreBankingNetwork | None, *, mutual_tls: bool
    ) -> tuple[PostingTarget, secretsmanager.Secret, secretsmanager.Secret | None]:
        """The HTTP target: URL and CA given at deploy time, the token in a secret of ours,
        and with ``mutual_tls`` a client certificate in another."""
        url = CfnParameter(
            self,
            "CoreBankingUrl",
            type="String",
            description="Base URL of the core-banking API (https://host[:port][/path])",
            allowed_pattern=r"^https://[^/?#@\s]+(/[^?#@\s]*)?$",
            constraint_description="an https:// URL without credentials, query or fragment",
        )
        # A deploy-time value reaches the function through its environment, 4 KB in all:
        # CloudFormation refuses a longer one before anything changes, saying what to do.
        ca_bundle = CfnParameter(
            self,
            "CoreBankingCaBundle",
            type="String",
            default="",
            description="PEM certificate of the core system's private CA (empty: public CAs)",
            max_length=CA_BUNDLE_ENVIRONMENT_LIMIT,
            constraint_description=(
                f"at most {CA_BUNDLE_ENVIRONMENT_LIMIT} characters, the function's environment "
                "holds it: give the issuing CA only, or a bundle of any size at synth with "
                "CaBundle.from_file (shipped in a layer)"
            ),
        )
        secret = secretsmanager.Secret(
            self,
            "CoreBankingCredentials",
            description="API token of the core-banking system, sent as Authorization: Bearer",
            encryption_key=self.operations_key,
            removal_policy=config.removal_policy,
        )
        reason = (
            "The core-banking team issues this API token and rotates it on their side; the new "
            "value is put into the secret then (the function reads it again within five "
            "minutes, or at once on a 401). Secrets Manager rotation would need their API."
        )
        acknowledge(secret, "AwsSolutions-SMG4", reason)
        acknowledge_in_packs(secret, "SecretsManagerRotationEnabled", reason)
        certificate: secretsmanager.Secret | None = None
        client_certificate = None
        if mutual_tls:
            certificate = secretsmanager.Secret(
                self,
                "CoreBankingClientCertificate",
                description="TLS client certificate and key for the core-banking API (mutual "
                'TLS), JSON {"certificate", "privateKey"}',
                encryption_key=self.operations_key,
                removal_policy=config.removal_policy,
            )
            reason = (
                "The bank's PKI issues this client certificate and renews it before it expires; "
                "the new certificate and key are put into the secret then (the function reads "
                "it again within five minutes, or at once when the core system refuses the "
                "handshake). Secrets Manager rotation would need the bank's PKI."
            )
            acknowledge(certificate, "AwsSolutions-SMG4", reason)
            acknowledge_in_packs(certificate, "SecretsManagerRotationEnabled", reason)
            client_certificate = CoreBankingClientCertificate(certificate)
        target = PostingTarget.http(
            url.value_as_string,
            credentials=CoreBankingCredentials(secret),
            client_certificate=client_certificate,
            ca_bundle=CaBundle.from_pem(ca_bundle.value_as_string),
            network=network,
        )
        return target, secret, certificate

    @staticmethod
    def _acknowledge_sample_source(source: PaymentFunction) -> None:
        acknowledge_outside_vpc(source.function, ("dynamodb", "kms", "logs", "xray"))
        acknowledge_in_packs(
            source.function,
            "LambdaDLQ",
            "A development tool, invoked by hand to write sample transactions and never by an "
            "event: the person who invokes it gets its result or error back directly.",
            packs=(NIST_800_53_R5,),
        )
        acknowledge_in_packs(
            source.function,
            "LambdaConcurrency",
            "A development tool, invoked by hand to write sample transactions and never by an "
            "event, so there is no load that a concurrency limit would need to bound.",
            packs=(NIST_800_53_R5,),
        )
