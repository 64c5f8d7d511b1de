"""A small template of the pipeline's shape and a run's activity, for the cost model's tests."""

from __future__ import annotations

from typing import Any

from payment_cost.activity import Activity, BusEvent


def _fn(service: str, log_group: str, **overrides: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "MemorySize": 256,
        "Architectures": ["arm64"],
        "TracingConfig": {"Mode": "PassThrough"},
        "LoggingConfig": {
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "WARN",
            "LogFormat": "JSON",
            "LogGroup": {"Ref": log_group},
        },
        "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": service}},
    }
    properties.update(overrides)
    return {"Type": "AWS::Lambda::Function", "Properties": properties}


def template() -> dict[str, Any]:
    """Table stream -> pipe (dedup enrichment) -> bus -> rule -> enrichment function; rule ->
    queue -> posting function; an archive of the roots."""
    return {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Transactions": {
                "Type": "AWS::DynamoDB::GlobalTable",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
                    "Replicas": [{"SSESpecification": {"KMSMasterKeyId": {"Ref": "Key"}}}],
                },
            },
            "DedupLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
            "EnrichLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
            "PostLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
            "Dedup": _fn("ingest-dedup", "DedupLogs"),
            "Enrich": _fn("enrichment", "EnrichLogs"),
            "Poster": _fn("posting", "PostLogs"),
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "bus"}},
            "Pipe": {
                "Type": "AWS::Pipes::Pipe",
                "Properties": {
                    "Source": {"Fn::GetAtt": ["Transactions", "StreamArn"]},
                    "Enrichment": {"Fn::GetAtt": ["Dedup", "Arn"]},
                    "Target": {"Fn::GetAtt": ["Bus", "Arn"]},
                    "SourceParameters": {
                        "DynamoDBStreamParameters": {"BatchSize": 10, "ParallelizationFactor": 1},
                        "FilterCriteria": {"Filters": [{"Pattern": '{"eventName":["INSERT"]}'}]},
                    },
                },
            },
            "EnrichRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {"detail-type": ["TransactionAuthorized"]},
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Enrich", "Arn"]}, "Id": "T"}],
                },
            },
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": {"Ref": "Key"}}},
            "PostRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {"detail-type": ["TransactionApproved"]},
                    "Targets": [{"Arn": {"Fn::GetAtt": ["Queue", "Arn"]}, "Id": "T"}],
                },
            },
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "FunctionName": {"Ref": "Poster"},
                    "BatchSize": 10,
                },
            },
            "Archive": {
                "Type": "AWS::Events::Archive",
                "Properties": {
                    "EventPattern": {
                        "account": [{"Ref": "AWS::AccountId"}],
                        "detail-type": ["TransactionAuthorized"],
                    },
                    "RetentionDays": 30,
                },
            },
        }
    }


def activity(records: int = 100, approved: int = 80) -> Activity:
    """``records`` authorized, ``approved`` of them approved; every function logged 500 bytes
    at INFO and 100 at WARN per invocation."""
    events = [
        BusEvent("payments.ingest", "TransactionAuthorized", {"n": i}) for i in range(records)
    ]
    events += [BusEvent("payments.rules", "TransactionApproved", {"n": i}) for i in range(approved)]
    services = ("ingest-dedup", "enrichment", "posting")
    return Activity(
        records=records,
        events=events,
        final_states={"posted": approved, "rejected": records - approved},
        completed_lifecycles=approved,
        log_bytes={s: {"INFO": 500 * records, "WARN": 100 * records} for s in services},
        invocations=dict.fromkeys(services, records),
    )


def lifecycle(records: int = 10) -> Activity:
    """Every record authorized as valid and new, enriched, approved: the rules' sources and
    screening fields as the pipeline writes them."""
    base = activity(records)
    screening = {"screening": {"valid": True, "duplicate": False}}
    base.events = [
        *(BusEvent("payments.ingest", "TransactionAuthorized", screening) for _ in range(records)),
        *(BusEvent("payments.enrichment", "TransactionEnriched", {}) for _ in range(records)),
        *(BusEvent("payments.rules", "TransactionApproved", {}) for _ in range(records)),
    ]
    return base
