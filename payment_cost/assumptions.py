"""What the template and the run do not say, stated once: docs/cost.md lists each with why.

Durations are warm execution times of one invocation in the cloud (the local runtime's times
are moto's, not DynamoDB's), estimated from the calls each handler makes (docs/scale.md counts
them) at a few milliseconds per DynamoDB or EventBridge call in the same Region.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SECONDS_PER_MONTH = 730 * 3600  # AWS prices a month as 730 hours


@dataclass(frozen=True)
class TableCalls:
    """Request units one record costs a table (per record the function handles)."""

    writes: float = 0.0
    reads: float = 0.0
    # Only for records whose event is one of these types (empty: every record handled).
    when: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """One function's warm duration and calls, keyed by its service name."""

    base_ms: float
    per_record_ms: float = 0.0
    # Environment variable naming a table -> request units per record handled.
    tables: dict[str, tuple[TableCalls, ...]] = field(default_factory=dict)
    sns_publishes_per_invocation: float = 0.0


PROFILES: dict[str, Profile] = {
    # One conditional PutItem per record into the dedup store; a malformed record is also put
    # in quarantine (the TransactionQuarantined events count those).
    "ingest-dedup": Profile(
        base_ms=15,
        per_record_ms=8,
        tables={
            "DEDUP_TABLE_NAME": (TableCalls(writes=1),),
            "QUARANTINE_TABLE_NAME": (TableCalls(writes=1, when=("TransactionQuarantined",)),),
        },
    ),
    # One GetItem of the account (eventually consistent: half a read unit) and one PutEvents.
    "enrichment": Profile(base_ms=35, tables={"ACCOUNTS_TABLE_NAME": (TableCalls(reads=0.5),)}),
    # A PutEvents and an SNS notification per flagged record.
    "screening-outcomes": Profile(base_ms=30, sns_publishes_per_invocation=1),
    # Powertools idempotency: a PutItem (in progress) and an UpdateItem (completed); ledger v2:
    # one TransactWriteItems of five items at two write units each (transfer and two entries in
    # the journal, the customer's balance and a house shard in balances), and a consistent read
    # of the hold for a clearing or a reversal (docs/scale.md, "What one transaction costs").
    "posting": Profile(
        base_ms=20,
        per_record_ms=30,
        tables={
            "IDEMPOTENCY_TABLE_NAME": (TableCalls(writes=2),),
            "LEDGER_JOURNAL_TABLE_NAME": (TableCalls(writes=6),),
            "LEDGER_BALANCES_TABLE_NAME": (TableCalls(writes=4, reads=2),),
        },
    ),
    # A query of one expiry bucket per minute; what expires is written like a posting.
    "expiry-sweeper": Profile(
        base_ms=200, tables={"LEDGER_BALANCES_TABLE_NAME": (TableCalls(reads=1),)}
    ),
}
DEFAULT_PROFILE = Profile(base_ms=50)

# The leaner topology's one function inside the pipe: screening and enrichment of a batch, a
# conditional write and a GetItem per record (no PutEvents: the pipe hands the batch on).
PROFILES["screen-and-enrich"] = Profile(
    base_ms=20,
    per_record_ms=15,
    tables={
        "DEDUP_TABLE_NAME": (TableCalls(writes=1),),
        "QUARANTINE_TABLE_NAME": (TableCalls(writes=1, when=("TransactionQuarantined",)),),
        "ACCOUNTS_TABLE_NAME": (TableCalls(reads=0.5),),
    },
)
# The guidance's functions as its own cost table gives them: 128 MB, 200 ms an invocation.
GUIDANCE_MEMORY_MB = 128
GUIDANCE_DURATION_MS = 200
PROFILES["guidance-dedup"] = Profile(
    base_ms=GUIDANCE_DURATION_MS, tables={"DEDUP_TABLE_NAME": (TableCalls(writes=1),)}
)
PROFILES["guidance-enrichment"] = Profile(
    base_ms=GUIDANCE_DURATION_MS, tables={"METADATA_TABLE_NAME": (TableCalls(reads=0.5),)}
)
PROFILES["guidance-posting"] = Profile(base_ms=GUIDANCE_DURATION_MS)

# The workflow: a task that puts events, publishes a notification or writes a table takes
# about this long; Choice and Pass states add little. Express bills whole 100 ms steps.
WORKFLOW_BASE_MS = 20
WORKFLOW_TASK_MS = 25
EXPRESS_BILLED_MB = 64  # the smallest step; the workflow's payloads are a few KB
# Written by the workflow: a held transaction's pending review (one PutItem, ~1.2 KB: 2 write
# units); a review decision claims and removes it (UpdateItem and DeleteItem: 4 write units).
HOLD_WRITE_UNITS = 2
REVIEW_WRITE_UNITS = 4

# What never expires (a log group without retention, an archive kept for ever, a table
# without a time to live) is priced for a year: each month's data costs this much over its
# first year, and the bill keeps growing after that.
NO_EXPIRY_DAYS = 365

# Cold starts: the share of invocations that start a new execution environment at a steady
# rate (environments are recycled every few hours), and how long the import of a handler takes
# in Lambda (issue 14 measured the posting handler at about 1.2 s locally). Lambda bills the
# INIT phase of managed runtimes as duration.
COLD_START_SHARE = 0.002
INIT_SECONDS = 1.0

# The platform's START, END and REPORT lines of one invocation (JSON format) when the system
# log level keeps INFO.
PLATFORM_LOG_BYTES = 700
# CloudWatch Logs bills storage on the compressed size; JSON log lines compress about 5 to 1.
LOG_COMPRESSION = 0.2

# Lambda's SQS poller starts with five concurrent long polls (20 s) per event source and
# keeps polling an empty queue (services-sqs-scaling); five batches share the arrivals.
SQS_POLLERS = 5
SQS_LONG_POLL_SECONDS = 20
# A DynamoDB stream is read four times a second per shard (Lambda's documented base rate for
# stream pollers; Pipes use the same pollers). A new on-demand table is made for 4,000 write
# units a second, 1,000 per partition: four partitions, so four stream shards, and records are
# spread over them and then over the pipe's ParallelizationFactor concurrent batches.
STREAM_SHARDS = 4
STREAM_POLLS_PER_SECOND = 4

# KMS: services that cache a data key call KMS once per period per caller.
SQS_KMS_SOURCE = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "sqs-key-management.html (R = B / D * (2P + C))"
)
DYNAMODB_KMS_SOURCE = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html"
    " (table key cached up to 5 minutes per caller connection)"
)
DYNAMODB_KEY_CACHE_SECONDS = 300
LAMBDA_KMS_SOURCE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html"
    " (environment decrypted when an execution environment starts)"
)
EVENTBRIDGE_KMS_SOURCE = (
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-encryption.html"
    " (a cached branch key: a few calls per bus per cache window, not per event)"
)
EVENTBRIDGE_KMS_CALLS_PER_WINDOW = 2
EVENTBRIDGE_KMS_WINDOW_SECONDS = 300
STEPFUNCTIONS_KMS_SOURCE = (
    "https://docs.aws.amazon.com/step-functions/latest/apireference/API_EncryptionConfiguration.html"
    " (GenerateDataKey once per kmsDataKeyReusePeriodSeconds)"
)
LOGS_KMS_SOURCE = (
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"
    " (CloudWatch Logs caches data keys; about one call per log stream per 5 minutes)"
)
PIPES_KMS_SOURCE = (
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-pipes-cmkey.html"
    " (assumed cached like DynamoDB's table key: one call per 5 minutes)"
)
SNS_KMS_SOURCE = (
    "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"
    " (data key reused for up to 5 minutes per principal; SQS's formula)"
)
# Each execution environment writes its own log stream.
LOGS_KEY_CACHE_SECONDS = 300
# X-Ray's default rule: the first request each second and 5% of the rest.
XRAY_DEFAULT_RESERVOIR = 1
XRAY_DEFAULT_RATE = 0.05
XRAY_SOURCE = "https://docs.aws.amazon.com/xray/latest/devguide/xray-console-sampling.html"
