"""Enforcement proven by mutation: remove one permission from a copy of the synthesized
template, run the pipeline locally, and the run reports the denial for that principal and
action, does not count as a success, and loses nothing (the affected transactions wait in a
dead-letter queue or in their queue).

The mutations cover identity policies, a Lambda resource policy, a queue policy and a key
policy, for a function's role, the pipe's dependencies, EventBridge itself and Lambda's
event source, so the test is not tuned to one permission. Two keep the key grant and change
what it is bound to, as a careless edit would: the service it may be used through
(``kms:ViaService``), and the key (another domain's). AWS refuses both; so must the run.
Each run is small.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from payment_local.assembly import StackAssembly
from payment_local.pipeline_run import run_transactions
from payment_local.report import build_report, run_failures
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator

pytestmark = pytest.mark.slow

CLEAN = Knobs(duplicate_rate=0, malformed_rate=0, rule_break_rate=0, high_value_rate=0)
Template = dict[str, Any]


def _resources(template: Template, prefix: str, kind: str) -> list[dict[str, Any]]:
    found = [
        r
        for lid, r in template["Resources"].items()
        if lid.startswith(prefix) and r["Type"] == kind
    ]
    assert found, f"no {kind} {prefix}* in the template"
    return found


def _statements(resource: dict[str, Any], document: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = resource["Properties"][document]["Statement"]
    return statements


def _drop_action(prefix: str, action: str) -> Callable[[Template], None]:
    """Remove ``action`` from the identity policy of role ``prefix``."""

    def mutate(template: Template) -> None:
        [policy] = _resources(template, prefix, "AWS::IAM::Policy")
        for statement in _statements(policy, "PolicyDocument"):
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            statement["Action"] = [a for a in actions if a != action] or ["none:Nothing"]

    return mutate


def _drop_permission(prefix: str) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        for lid in [lid for lid in template["Resources"] if lid.startswith(prefix)]:
            if template["Resources"][lid]["Type"] == "AWS::Lambda::Permission":
                del template["Resources"][lid]

    return mutate


def _drop_statement(
    prefix: str, kind: str, document: str, marker: str
) -> Callable[[Template], None]:
    """Remove the statements of a resource or key policy whose JSON contains ``marker``."""

    def mutate(template: Template) -> None:
        [resource] = _resources(template, prefix, kind)
        statements = _statements(resource, document)
        kept = [s for s in statements if marker not in json.dumps(s)]
        assert len(kept) < len(statements), f"no statement with {marker} in {prefix}"
        statements[:] = kept

    return mutate


def _key_grants(template: Template, prefix: str) -> list[dict[str, Any]]:
    [policy] = _resources(template, prefix, "AWS::IAM::Policy")
    grants = [
        statement
        for statement in _statements(policy, "PolicyDocument")
        if any(str(action).startswith("kms:") for action in _as_list(statement["Action"]))
    ]
    assert grants, f"no key grant in {prefix}"
    return grants


def _via_service(prefix: str, service: str, instead: str) -> Callable[[Template], None]:
    """Bind the role's key grant for ``service`` to another service instead."""

    def mutate(template: Template) -> None:
        changed = 0
        for statement in _key_grants(template, prefix):
            parts = statement["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1]
            if parts[0] == f"{service}.":
                parts[0] = f"{instead}."
                changed += 1
        assert changed == 1, f"{prefix} has no key grant through {service}"

    return mutate


def _other_key(prefix: str, key: str, instead: str) -> Callable[[Template], None]:
    """Point the role's grant on the key ``key*`` at the key ``instead*``."""

    def mutate(template: Template) -> None:
        [other] = [
            lid
            for lid, r in template["Resources"].items()
            if lid.startswith(instead) and r["Type"] == "AWS::KMS::Key"
        ]
        changed = 0
        for statement in _key_grants(template, prefix):
            for reference in _as_list(statement["Resource"]):
                if reference["Fn::GetAtt"][0].startswith(key):
                    reference["Fn::GetAtt"][0] = other
                    changed += 1
        assert changed == 1, f"{prefix} has no grant on {key}"

    return mutate


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Mutation:
    name: str
    mutate: Callable[[Template], None]
    principal: str  # how the report names who is refused (a prefix)
    action: str
    stops_postings: bool = True  # False: a side effect fails, transactions still post


MUTATIONS = [
    Mutation("identity policy: dedup role without PutItem",
             _drop_action("IngestDedupRoleDefaultPolicy", "dynamodb:PutItem"),
             "role IngestDedupRole", "dynamodb:PutItem"),
    Mutation("identity policy: enrichment role without PutEvents",
             _drop_action("EnrichmentEnrichRoleDefaultPolicy", "events:PutEvents"),
             "role EnrichmentEnrichRole", "events:PutEvents"),
    Mutation("identity policy: posting role without ReceiveMessage",
             _drop_action("PostingPosterRoleDefaultPolicy", "sqs:ReceiveMessage"),
             "role PostingPosterRole", "sqs:ReceiveMessage"),
    Mutation("resource policy: no Lambda permission for the enrichment rule",
             _drop_permission("EnrichmentRuleAllowEventRule"),
             "events.amazonaws.com for", "lambda:InvokeFunction"),
    Mutation("resource policy: posting queue closed to EventBridge",
             _drop_statement("PostingQueuePolicy", "AWS::SQS::QueuePolicy", "PolicyDocument",
                             "events.amazonaws.com"),
             "events.amazonaws.com for", "sqs:SendMessage"),
    Mutation("key policy: EventBridge may not encrypt the archive",
             _drop_statement("IngestArchiveKey", "AWS::KMS::Key", "KeyPolicy",
                             "kms:EncryptionContext:aws:events:event-bus:arn"),
             "events.amazonaws.com for", "kms:GenerateDataKey", stops_postings=False),
    Mutation("key grant through another service: the posting queue's key via SNS",
             _via_service("PostingPosterRoleDefaultPolicy", "sqs", instead="sns"),
             "role PostingPosterRole", "kms:Decrypt"),
    Mutation("key grant on another key: the dedup table's key swapped for the ledger's",
             _other_key("IngestDedupRoleDefaultPolicy", "IngestKey", instead="LedgerKey"),
             "role IngestDedupRole", "kms:Decrypt"),
]  # fmt: skip


def _mutated(assembly: StackAssembly, mutation: Mutation) -> StackAssembly:
    template = copy.deepcopy(assembly.template)
    mutation.mutate(template)
    return StackAssembly(assembly.directory, assembly.stack_name, template, assembly.assets)


def _waiting(runtime: LocalRuntime) -> tuple[set[str], int]:
    """Transactions waiting in any queue of the template (dead-letter queues included), and
    the records the pipe's dead-letter messages locate in the stream."""
    ids: set[str] = set()
    stream_records = 0
    for url in runtime.topology.queues.values():
        while messages := runtime.clients.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600
        ).get("Messages", []):
            for message in messages:
                body = json.loads(message["Body"])
                if "batchSize" in body:
                    stream_records += int(body["batchSize"])
                else:
                    # An on-failure destination holds invocation records; other queues, events.
                    ids.add(body.get("requestPayload", body)["detail"]["transactionId"])
    return ids, stream_records


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_a_removed_permission_is_refused_reported_and_loses_nothing(
    assembly: StackAssembly, mutation: Mutation
) -> None:
    records = list(TransactionGenerator(knobs=CLEAN, seed=23).generate(8))

    with LocalRuntime(_mutated(assembly, mutation), function_log=io.StringIO()) as runtime:
        result = run_transactions(runtime, records, settle_steps=5)
        report = build_report(runtime, result, {})
        waiting, stream_records = _waiting(runtime)

    refused = [(d["principal"], d["action"]) for d in report.denials]
    assert any(p.startswith(mutation.principal) and a == mutation.action for p, a in refused), (
        refused
    )
    assert run_failures(report), "a run with a refused call must not count as a success"
    finished = set(records and result.written_at) - set(report.unaccounted)
    posted = report.data["finalStates"].get("posted", 0)
    assert (posted < len(records)) is mutation.stops_postings, report.data["finalStates"]
    # Nothing lost: each transaction finished, or waits in a queue, or is located by a
    # dead-letter record of the pipe.
    unaccounted = set(report.unaccounted) - waiting
    assert len(unaccounted) == stream_records, (unaccounted, stream_records)
    assert len(finished) + len(waiting - finished) + stream_records == len(records)
