"""BufferedPoster posting over TLS to a bank's private CA, run locally as a user's app would
deploy it: a CA bundle of root and intermediates (more than 6 KB, so no environment variable
can carry it) read at synth and shipped as a file in a layer; the function reads the file
under /opt, as on AWS, and the runtime serves it from the layer asset of the cloud assembly.
A bundle of another CA fails the handshake, and the approvals end in the dead-letter queue,
as they would on AWS.

With mutual TLS, the core system refuses a handshake without a client certificate its CA
issued; the runtime issues one into the function's secret, which the function reads by
reference under access enforcement.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager

from payment_local.access.authorizer import describe
from payment_local.assembly import StackAssembly, load_assembly
from payment_local.runtime import LocalRuntime
from payment_local.tls import LocalCertificateAuthority
from payment_posting_functions.domain.accounts import sample_accounts
from payment_posting_functions.domain.enrichment import enrich
from payment_posting_functions.domain.events import TransactionApproved
from payment_posting_functions.domain.transaction import AuthorizedTransaction
from payment_stack import (
    BufferedPoster,
    CaBundle,
    CoreBankingClientCertificate,
    CoreBankingCredentials,
    PostingTarget,
)
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


def poster_app(
    outdir: Path, ca_bundle: CaBundle, *, client_certificate: bool = False
) -> StackAssembly:
    """An app as a bank writes it: the core system's URL a deploy-time parameter (the local
    runtime gives its fake core system's), the token in a secret, the CA bundle from a file,
    and optionally a client certificate in a secret with a key of its own."""
    app = cdk.App(outdir=str(outdir), context={**CDK_JSON_CONTEXT, **SKIP_BUNDLING})
    stack = cdk.Stack(app, "PostingOverTls")
    bus = events.EventBus(stack, "Bus")
    url = cdk.CfnParameter(stack, "CoreBankingUrl", type="String")
    token = secretsmanager.Secret(stack, "CoreBankingToken")
    certificate = None
    if client_certificate:
        key = kms.Key(stack, "ClientCertificateKey", enable_key_rotation=True)
        secret = secretsmanager.Secret(stack, "ClientCertificate", encryption_key=key)
        certificate = CoreBankingClientCertificate(secret)
        cdk.CfnOutput(stack, "ClientCertificateSecretArn", value=secret.secret_arn)
    poster = BufferedPoster(
        stack,
        "Posting",
        event_bus=bus,
        posting_target=PostingTarget.http(
            url.value_as_string,
            credentials=CoreBankingCredentials(token),
            client_certificate=certificate,
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

    def start(
        bundle_pem: str,
        *,
        client_certificate: bool = False,
        change: Callable[[StackAssembly], StackAssembly] = lambda assembly: assembly,
        **options: Any,
    ) -> LocalRuntime:
        bundle = tmp_path / "bank-ca.pem"
        bundle.write_text(bundle_pem)
        assembly = poster_app(
            tmp_path / f"cdk.out.{len(runtimes)}",
            CaBundle.from_file(bundle),
            client_certificate=client_certificate,
        )
        runtime = LocalRuntime(
            change(assembly), function_log=log, core_banking_authority=bank_ca, **options
        )
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
    # Each delivery of each approval (two receives each) failed its handshake.
    refused = core.state.handshakes_refused(at_least=2 * len(approved))
    assert refused == ["TLSV1_ALERT_UNKNOWN_CA"] * 2 * len(approved)
    dead = drain_bodies(runtime.clients, runtime.output("DeadLetterQueueUrl"))
    assert sorted(body["detail"]["transactionId"] for body in dead) == sorted(
        event.transaction_id for event in approved
    )
    logged = {e.detail_type for events in runtime.event_log.by_transaction.values() for e in events}
    assert logged == {"TransactionApproved"}


# Mutual TLS


def _poster_calls(runtime: LocalRuntime) -> set[tuple[str, str, bool]]:
    return {
        (req.action, req.resource, allowed)
        for (req, allowed), _ in runtime.access.decided.items()
        if "PostingPoster" in describe(req.caller, req)
    }


def test_with_a_client_certificate_from_its_secret_it_posts_over_mutual_tls(
    run: Any, bank_ca: LocalCertificateAuthority
) -> None:
    runtime: LocalRuntime = run(bank_ca.ca_pem, client_certificate=True)
    core = runtime.core_banking
    assert core is not None
    assert core.requires_client_certificates
    [poster] = [f for lid, f in runtime.topology.functions.items() if lid.startswith("Posting")]
    approved = approvals(3)

    approve(runtime, approved)

    assert set(core.state.postings) == {event.transaction_id for event in approved}
    # Every request came with the certificate the runtime issued for the function.
    assert set(core.state.client_certificates) == {poster.name}
    assert core.state.refused_handshakes == []
    # Read by the function itself, by reference, and the read was authorized: the secret's
    # value and its key through Secrets Manager.
    calls = _poster_calls(runtime)
    certificate_arn = runtime.output("ClientCertificateSecretArn")
    assert ("secretsmanager:GetSecretValue", certificate_arn, True) in calls
    assert any(action == "kms:Decrypt" and allowed for action, _, allowed in calls)
    assert runtime.access.denials() == []


def test_without_a_client_certificate_the_core_system_refuses_and_approvals_dead_letter(
    run: Any, bank_ca: LocalCertificateAuthority
) -> None:
    runtime: LocalRuntime = run(bank_ca.ca_pem, core_banking_requires_client_certificates=True)
    approved = approvals(2)

    approve(runtime, approved)

    core = runtime.core_banking
    assert core is not None
    assert core.state.requests == 0
    refused = core.state.handshakes_refused(at_least=2 * len(approved))
    assert refused == ["PEER_DID_NOT_RETURN_A_CERTIFICATE"] * 2 * len(approved)
    dead = drain_bodies(runtime.clients, runtime.output("DeadLetterQueueUrl"))
    assert sorted(body["detail"]["transactionId"] for body in dead) == sorted(
        event.transaction_id for event in approved
    )
    logged = {e.detail_type for events in runtime.event_log.by_transaction.values() for e in events}
    assert logged == {"TransactionApproved"}


def _without_the_certificate_read(assembly: StackAssembly) -> StackAssembly:
    """The template with the posting role's read of the client certificate secret removed."""
    template = copy.deepcopy(assembly.template)
    resources = template["Resources"]
    [secret_id] = [lid for lid in resources if lid.startswith("ClientCertificate")
                   and resources[lid]["Type"] == "AWS::SecretsManager::Secret"]  # fmt: skip
    removed = 0
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Policy" or not logical_id.startswith("PostingPoster"):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            # The token's and the certificate's reads may be one statement (minimizePolicies).
            named = statement["Resource"]
            named = named if isinstance(named, list) else [named]
            kept = [r for r in named if r != {"Ref": secret_id}]
            removed += len(named) - len(kept)
            statement["Resource"] = kept or ["arn:aws:secretsmanager:::nothing"]
    assert removed == 1
    return StackAssembly(assembly.directory, assembly.stack_name, template, assembly.assets)


@pytest.mark.denials_expected
def test_without_the_grant_the_certificate_read_is_refused_and_nothing_is_sent(
    run: Any, bank_ca: LocalCertificateAuthority
) -> None:
    runtime: LocalRuntime = run(
        bank_ca.ca_pem, client_certificate=True, change=_without_the_certificate_read
    )
    approved = approvals(2)

    approve(runtime, approved)

    certificate_arn = runtime.output("ClientCertificateSecretArn")
    assert ("secretsmanager:GetSecretValue", certificate_arn, False) in _poster_calls(runtime)
    core = runtime.core_banking
    assert core is not None
    assert core.state.requests == 0
    assert core.state.refused_handshakes == []  # no connection without the certificate
    dead = drain_bodies(runtime.clients, runtime.output("DeadLetterQueueUrl"))
    assert len(dead) == len(approved)
