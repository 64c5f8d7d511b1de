"""The pipeline posting to a core system over HTTPS, locally: the stack synthesized with
``-c posting=http``, a fake core system on 127.0.0.1 with a certificate from a CA the runtime
generates, the same adapter code the function runs on AWS, the token read from the secret
under access enforcement."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from payment_local.access.authorizer import describe
from payment_local.assembly import StackAssembly
from payment_local.pipeline_run import run_transactions
from payment_local.runtime import LocalRuntime
from payment_posting_functions.domain.generator import Knobs, TransactionGenerator
from payment_stack.stack import MTLS_CONTEXT_KEY, POSTING_CONTEXT_KEY
from tests.e2e.conftest import synth_dev

pytestmark = pytest.mark.slow

CLEAN = Knobs(duplicate_rate=0, foreign_rate=0, high_value_rate=0, unknown_account_rate=0,
              malformed_rate=0, rule_break_rate=0)  # fmt: skip


@pytest.fixture(scope="module")
def http_assembly(tmp_path_factory: pytest.TempPathFactory) -> StackAssembly:
    return synth_dev(tmp_path_factory.mktemp("cdk.out.http"), **{POSTING_CONTEXT_KEY: "http"})


@pytest.fixture
def http_runtime(http_assembly: StackAssembly, tmp_path: Path) -> Iterator[LocalRuntime]:
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(http_assembly, function_log=log) as running,
    ):
        yield running


def _poster_calls(runtime: LocalRuntime) -> set[tuple[str, str, bool]]:
    return {
        (req.action, req.resource, allowed)
        for (req, allowed), _ in runtime.access.decided.items()
        if "PostingPoster" in describe(req.caller, req)
    }


def test_approved_transactions_are_posted_to_the_core_system_over_tls(
    http_runtime: LocalRuntime,
) -> None:
    core = http_runtime.core_banking
    assert core is not None
    assert core.url.startswith("https://127.0.0.1:")
    records = list(TransactionGenerator(knobs=CLEAN, seed=7).generate(12))

    run_transactions(http_runtime, records)

    by_tx = http_runtime.event_log.by_transaction
    posted = [by_tx[r.transaction_id][-1] for r in records]
    approved = [e for e in posted if e.detail_type == "TransactionPosted"]
    assert approved, [e.detail_type for e in posted]
    for event in approved:
        assert event.detail["postingSystem"] == "http"
        assert event.detail["postingId"].startswith("core-")
    # The core system holds exactly the postings the pipeline reports, keyed by transaction.
    assert set(core.state.postings) == {e.detail["transactionId"] for e in approved}
    assert core.state.refused_credentials == 0
    # No ledger in HTTP mode.
    assert "LedgerTableName" not in http_runtime.assembly.template.get("Outputs", {})
    # The token was read by the function itself, by reference, and the read was authorized.
    secret_arn = http_runtime.output("CoreBankingSecretArn")
    calls = _poster_calls(http_runtime)
    assert ("secretsmanager:GetSecretValue", secret_arn, True) in calls
    assert any(a == "kms:Decrypt" and ok for a, _, ok in calls)
    assert not [c for c in calls if not c[2]]


def _without_the_secret_read(assembly: StackAssembly) -> StackAssembly:
    """A copy of the template whose posting role lacks secretsmanager:GetSecretValue."""
    template = copy.deepcopy(assembly.template)
    dropped = 0
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy" or not logical_id.startswith("PostingPoster"):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            kept = [a for a in actions if a != "secretsmanager:GetSecretValue"]
            dropped += len(actions) - len(kept)
            statement["Action"] = kept or ["none:Nothing"]
    assert dropped == 1
    return StackAssembly(assembly.directory, assembly.stack_name, template, assembly.assets)


@pytest.mark.denials_expected
def test_without_the_grant_the_secret_read_is_refused_and_nothing_is_posted(
    http_assembly: StackAssembly, tmp_path: Path
) -> None:
    records = list(TransactionGenerator(knobs=CLEAN, seed=8).generate(4))
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(_without_the_secret_read(http_assembly), function_log=log) as runtime,
    ):
        core = runtime.core_banking
        assert core is not None
        run_transactions(runtime, records, timeout=60)
        calls = _poster_calls(runtime)
        secret_arn = runtime.output("CoreBankingSecretArn")

    assert ("secretsmanager:GetSecretValue", secret_arn, False) in calls, calls
    assert core.state.postings == {}
    assert core.state.requests == 0  # no request went out without its credential


def test_the_mutual_tls_variant_presents_the_client_certificate_the_runtime_issued(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """``make demo POSTING=http MTLS=true``: the core system requires a client certificate its
    CA issued; the runtime puts one into the stack's secret and the function reads it there."""
    assembly = synth_dev(
        tmp_path_factory.mktemp("cdk.out.mtls"),
        **{POSTING_CONTEXT_KEY: "http", MTLS_CONTEXT_KEY: "true"},
    )
    records = list(TransactionGenerator(knobs=CLEAN, seed=9).generate(6))
    with (
        (tmp_path / "functions.log").open("w") as log,
        LocalRuntime(assembly, function_log=log) as runtime,
    ):
        core = runtime.core_banking
        assert core is not None
        assert core.requires_client_certificates
        run_transactions(runtime, records)
        [poster] = [f for lid, f in runtime.topology.functions.items()
                    if lid.startswith("PostingPoster")]  # fmt: skip
        certificate_arn = runtime.output("CoreBankingClientCertificateSecretArn")
        calls = _poster_calls(runtime)
        by_tx = runtime.event_log.by_transaction

    last = [by_tx[r.transaction_id][-1] for r in records]
    posted = [e for e in last if e.detail_type == "TransactionPosted"]
    assert posted, [e.detail_type for e in last]
    assert set(core.state.postings) == {e.detail["transactionId"] for e in posted}
    assert set(core.state.client_certificates) == {poster.name}
    assert core.state.refused_handshakes == []
    assert ("secretsmanager:GetSecretValue", certificate_arn, True) in calls
    assert not [c for c in calls if not c[2]]
