"""BufferedPoster posting over TLS to a bank's private CA, run locally as a user's app would
deploy it: a CA bundle of root and intermediates (more than 6 KB, so no environment variable
can carry it) read at synth and shipped as a file in a layer; the function reads the file
under /opt, as on AWS, and the runtime serves it from the layer asset of the cloud assembly.
A bundle of another CA fails the handshake, and the approvals end in the dead-letter queue,
as they would on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_secretsmanager as secretsmanager

from payment_local.assembly import StackAssembly, load_assembly
from payment_local.runtime import LocalRuntime
from payment_local.tls import LocalCertificateAuthority
from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import TransactionApproved
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from payment_stack import BufferedPoster, CaBundle, CoreBankingCredentials, PostingTarget
from tests.factories import valid_item
from tests.infra.support import CDK_JSON_CONTEXT, SKIP_BUNDLING
from tests.local.support import drain_bodies

pytestmark = pytest.mark.slow

ACCOUNTS = {account.account_id: account for account in sample_accounts()}
BUNDLE_FILE = "/opt/core-banking-ca/ca-bundle.pem"


@pytest.fixture(scope="module")
def bank_ca() -> LocalCertificateAuthority:
    """A bank's private CA: a root and four intermediates with 3072-bit RSA keys; the fake
    core system presents a certificate the last intermediate issued, with its chain."""
    authority = LocalCertificateAuthority.generate(
        name="bank root CA", intermediates=4, rsa_key_size=3072
    )
    assert len(authority.ca_pem.encode()) > 6 * 1024
    return authority


def poster_app(outdir: Path, ca_bundle: CaBundle) -> StackAssembly:
    """An app as a bank writes it: the core system's URL a deploy-time parameter (the local
    runtime gives its fake core system's), the token in a secret, the CA bundle from a file."""
    app = cdk.App(outdir=str(outdir), context={**CDK_JSON_CONTEXT, **SKIP_BUNDLING})
    stack = cdk.Stack(app, "PostingOverTls")
    bus = events.EventBus(stack, "Bus")
    url = cdk.CfnParameter(stack, "CoreBankingUrl", type="String")
    token = secretsmanager.Secret(stack, "CoreBankingToken")
    poster = BufferedPoster(
        stack,
        "Posting",
        event_bus=bus,
        posting_target=PostingTarget.http(
            url.value_as_string,
            credentials=CoreBankingCredentials(token),
            ca_bundle=ca_bundle,
            attempts=1,
        ),
        max_receive_count=2,
    )
    cdk.CfnOutput(stack, "EventBusName", value=bus.event_bus_name)
    cdk.CfnOutput(stack, "DeadLetterQueueUrl", value=poster.dead_letter_queue.queue_url)
    app.synth()
    return load_assembly(outdir)


def approvals(count: int) -> list[TransactionApproved]:
    approved = []
    for number in range(1, count + 1):
        transaction = AuthorizedTransaction.model_validate(
            valid_item(transactionId=f"tx-tls-{number:04d}")
        )
        approved.append(
            TransactionApproved(
                transaction_id=transaction.transaction_id,
                transaction=transaction,
                enrichment=enrich(transaction, ACCOUNTS.get(transaction.account_id)),
            )
        )
    return approved


def approve(runtime: LocalRuntime, approved: Sequence[TransactionApproved]) -> None:
    """Approvals on the bus, as the rules engine publishes them."""
    response = runtime.clients.events.put_events(
        Entries=[
            {
                "EventBusName": runtime.output("EventBusName"),
                "Source": event.source.value,
                "DetailType": event.name.value,
                "Detail": json.dumps(event.to_detail()),
            }
            for event in approved
        ]
    )
    assert response["FailedEntryCount"] == 0
    runtime.run_until_idle()


@pytest.fixture
def run(tmp_path: Path, bank_ca: LocalCertificateAuthority) -> Iterator[Any]:
    """Synthesize the app with a bundle, and run it against the bank CA's fake core system."""
    runtimes: list[LocalRuntime] = []
    log = (tmp_path / "functions.log").open("w")

    def start(bundle_pem: str) -> LocalRuntime:
        bundle = tmp_path / "bank-ca.pem"
        bundle.write_text(bundle_pem)
        assembly = poster_app(tmp_path / "cdk.out", CaBundle.from_file(bundle))
        runtime = LocalRuntime(assembly, function_log=log, core_banking_authority=bank_ca)
        runtimes.append(runtime.__enter__())
        return runtime

    yield start
    for runtime in runtimes:
        runtime.__exit__(None, None, None)
    log.close()


def test_a_6_kb_bundle_in_a_layer_posts_over_tls(
    run: Any, bank_ca: LocalCertificateAuthority
) -> None:
    runtime: LocalRuntime = run(bank_ca.ca_pem)
    [poster] = [f for lid, f in runtime.topology.functions.items() if lid.startswith("Posting")]
    # The function is told the path Lambda gives the layer's file, not the PEM.
    assert poster.environment["CORE_BANKING_CA_BUNDLE_FILE"] == BUNDLE_FILE
    assert "CORE_BANKING_CA_BUNDLE" not in poster.environment
    approved = approvals(3)

    approve(runtime, approved)

    core = runtime.core_banking
    assert core is not None
    assert set(core.state.postings) == {event.transaction_id for event in approved}
    assert core.state.refused_handshakes == []
    outcomes = {
        tx: [e.detail_type for e in logged]
        for tx, logged in runtime.event_log.by_transaction.items()
    }
    assert outcomes == {event.transaction_id: ["TransactionApproved", "TransactionPosted"]
                        for event in approved}  # fmt: skip
    assert drain_bodies(runtime.clients, runtime.output("DeadLetterQueueUrl")) == []
    assert runtime.access.denials() == []


def test_a_bundle_of_another_ca_fails_the_handshake_and_ends_in_the_dead_letter_queue(
    run: Any,
) -> None:
    """What AWS would do: the function does not trust the core system, sends nothing, and each
    approval returns to the queue until maxReceiveCount, then waits in the dead-letter queue
    for a person (no PostingFailed: a certificate is no verdict on the transaction)."""
    other = LocalCertificateAuthority.generate(
        name="another root CA", intermediates=4, rsa_key_size=3072
    )
    runtime: LocalRuntime = run(other.ca_pem)
    approved = approvals(2)

    approve(runtime, approved)

    core = runtime.core_banking
    assert core is not None
    assert core.state.requests == 0
    assert core.state.postings == {}
    # The client refused the server's certificate: unknown CA, on every delivery.
    assert core.state.refused_handshakes
    assert set(core.state.refused_handshakes) == {"TLSV1_ALERT_UNKNOWN_CA"}
    dead = drain_bodies(runtime.clients, runtime.output("DeadLetterQueueUrl"))
    assert sorted(body["detail"]["transactionId"] for body in dead) == sorted(
        event.transaction_id for event in approved
    )
    logged = {e.detail_type for events in runtime.event_log.by_transaction.values() for e in events}
    assert logged == {"TransactionApproved"}
