"""Only the rules engine's approvals are posted, enforced as AWS would enforce it.

Each processor may publish its own source only (an ``events:source`` condition on its role),
and the posting queue admits the posting rule only (a Deny on any other ``aws:SourceArn``).
The local run evaluates both, so a forged approval fails here as it would on AWS.
"""

from __future__ import annotations

import copy
import io
import json

import pytest
from botocore.exceptions import ClientError

from payment_local.assembly import StackAssembly
from payment_local.clients import AwsClients
from payment_local.pipeline_run import run_transactions
from payment_local.report import build_report
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.events import BY_NAME
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator

pytestmark = pytest.mark.slow

CLEAN = Knobs(duplicate_rate=0, malformed_rate=0, rule_break_rate=0, high_value_rate=0)


@pytest.mark.denials_expected
def test_a_processor_cannot_put_an_approval_on_the_bus(runtime: LocalRuntime) -> None:
    [enrich] = [f for lid, f in runtime.topology.functions.items() if lid.startswith("Enrich")]
    assert enrich.role_arn is not None
    as_enrichment = AwsClients(
        runtime.environment.region, runtime.access.credentials_for(enrich.role_arn)
    )
    forged = {
        "EventBusName": runtime.output("EventBusName"),
        "Source": "payments.rules",
        "DetailType": "TransactionApproved",
        "Detail": json.dumps({"transactionId": "tx-forged-0001"}),
    }

    with pytest.raises(ClientError) as refused:
        as_enrichment.events.put_events(Entries=[forged])

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "events:PutEvents" in refused.value.response["Error"]["Message"]
    # Its own source it may still publish.
    own = {**forged, "Source": "payments.enrichment", "DetailType": "TransactionEnriched"}
    assert as_enrichment.events.put_events(Entries=[own])["FailedEntryCount"] == 0


def test_another_rule_cannot_feed_the_posting_queue(assembly: StackAssembly) -> None:
    template = copy.deepcopy(assembly.template)
    resources = template["Resources"]
    [bus] = [lid for lid, r in resources.items() if r["Type"] == "AWS::Events::EventBus"]
    [queue] = [lid for lid in resources if lid.startswith("PostingQueue")
               and resources[lid]["Type"] == "AWS::SQS::Queue"]  # fmt: skip
    # A rule someone added that sends enriched, not yet approved, transactions to posting.
    resources["RogueRule"] = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "EventBusName": {"Ref": bus},
            "EventPattern": {"source": ["payments.enrichment"]},
            "Targets": [{"Arn": {"Fn::GetAtt": [queue, "Arn"]}, "Id": "Rogue"}],
        },
    }
    rogue = StackAssembly(assembly.directory, assembly.stack_name, template, assembly.assets)
    records = list(TransactionGenerator(knobs=CLEAN, seed=31).generate(6))

    with LocalRuntime(rogue, function_log=io.StringIO()) as runtime:
        result = run_transactions(runtime, records)
        report = build_report(runtime, result, {})
        by_tx = runtime.event_log.by_transaction

    refused = {(d["principal"].split(" for ")[0], d["action"]) for d in report.denials}
    assert refused == {("events.amazonaws.com", "sqs:SendMessage")}
    assert all("RogueRule" in d["principal"] for d in report.denials)
    # Each transaction was posted once, through the rules engine's approval only.
    for record in records:
        names = [e.detail_type for e in by_tx[record.transaction_id]]
        assert [n for n in names if BY_NAME[n].TERMINAL] == ["TransactionPosted"], names
    assert report.data["posting"]["ledgerEntries"] == 2 * len(records)
