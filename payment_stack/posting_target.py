"""Where BufferedPoster posts: the built-in ledger, or a bank's core system over HTTPS.

    PostingTarget.ledger()
    PostingTarget.http(
        "https://core.bank.example/api",
        credentials=CoreBankingCredentials(secret),            # Authorization: Bearer <secret>
        client_certificate=CoreBankingClientCertificate(cert_secret),  # mutual TLS, or both
        ca_bundle=CaBundle.from_file("certs/bank-ca.pem"),      # the bank's private CA
        network=CoreBankingNetwork(vpc=vpc, core_system=ec2.Peer.ipv4("10.20.0.0/16")),
    )

What is checked at synth, for values that are not tokens: the URL is https:// with a host and
carries no credentials; the CA bundle is PEM certificates and no key; the retry budget is
positive. The budget against the function timeout is BufferedPoster's check
(it knows the batch size). The credential (a token, a client certificate, or both) is a
Secrets Manager secret: the function gets its ARN, reads it at run time and caches it, so it is
never in the environment in clear.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from aws_cdk import Duration, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager

# Lambda allows 4 KB for all of a function's environment variables together. A bundle known
# at synth goes into a layer (any size); one given at deploy time (a token, e.g. a stack
# parameter's value) goes into the environment and shares those 4 KB with the other settings:
# what a parameter carrying one may hold (payment_stack/stack.py).
CA_BUNDLE_ENVIRONMENT_LIMIT = 3 * 1024
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
HTTPS_PORT = 443


class PostingKind(enum.Enum):
    LEDGER = "ledger"
    HTTP = "http"


class ConflictMeaning(enum.Enum):
    """What the core system means by HTTP 409 (its API documentation says which).

    The values are what the posting function reads
    (``payment_posting_functions.domain.http_posting.ConflictMeaning``).
    """

    #: It already holds this Idempotency-Key: posted before; the transaction ends posted.
    ALREADY_POSTED = "already-posted"
    #: The posting conflicts with the account's state: a refusal, the transaction ends
    #: ``PostingFailed``.
    CONFLICT = "conflict"


@dataclass(frozen=True)
class CaBundle:
    """PEM certificates the posting function trusts instead of the public CAs.

    It replaces the public CAs, so a bank's private CA is trusted and no other. The bundle is
    public material (certificates, no keys). Known at synth (``from_file``, or ``from_pem``
    with the text), it may be of any size (a root and its intermediates): it is shipped as a
    file in a small layer of the posting function's own
    (``/opt/core-banking-ca/ca-bundle.pem``, payment_stack/ca_bundle_layer.py). Given as a
    token (``from_pem`` with e.g. a CfnParameter's value), it can only be resolved at deploy
    time, so it goes into the function's environment, which holds 4 KB for all variables: keep
    such a bundle to the issuing CA (a few hundred bytes to 2 KB), or read the file at synth.
    """

    pem: str

    @classmethod
    def from_pem(cls, pem: str) -> CaBundle:
        """PEM text, or a token resolving to it (e.g. a CfnParameter's value)."""
        return cls(pem)

    @classmethod
    def from_file(cls, path: str | Path) -> CaBundle:
        """A PEM file, read at synth (e.g. the bank's CA certificates kept beside the app)."""
        return cls(Path(path).read_text(encoding="ascii"))

    @property
    def known_at_synth(self) -> bool:
        """Is the PEM text itself here (a layer file), or a token (the environment)?"""
        return not Token.is_unresolved(self.pem)

    def __post_init__(self) -> None:
        if not isinstance(self.pem, str):
            raise TypeError(f"CaBundle: pem must be a str, got {type(self.pem).__name__}")
        if Token.is_unresolved(self.pem):
            return
        if _PEM_CERTIFICATE not in self.pem:
            raise ValueError("CaBundle: no PEM certificate ('-----BEGIN CERTIFICATE-----') found")
        if "PRIVATE KEY" in self.pem:
            raise ValueError("CaBundle: the bundle holds a private key; give certificates only")
        if not self.pem.isascii():
            raise ValueError("CaBundle: PEM is ASCII text; the bundle holds other characters")


@dataclass(frozen=True)
class CoreBankingCredentials:
    """A credential the core system expects in one request header, kept in Secrets Manager.

    The function is granted ``secretsmanager:GetSecretValue`` on this secret only (and
    ``kms:Decrypt`` through Secrets Manager when the secret has a key of its own); it sends
    ``header_name: value_prefix + <SecretString>``.
    """

    secret: secretsmanager.ISecret
    header_name: str = "Authorization"
    value_prefix: str = "Bearer "

    def __post_init__(self) -> None:
        if not isinstance(self.header_name, str) or not _is_token_name(self.header_name):
            raise ValueError(
                f"CoreBankingCredentials: header_name must be an HTTP header name, "
                f"got {self.header_name!r}"
            )
        if not isinstance(self.value_prefix, str) or any(c in self.value_prefix for c in "\r\n"):
            raise ValueError("CoreBankingCredentials: value_prefix must be one line of text")


@dataclass(frozen=True)
class CoreBankingClientCertificate:
    """A TLS client certificate the core system asks for (mutual TLS), kept in Secrets Manager.

    The secret's value is JSON with the certificate and its unencrypted private key, PEM::

        {"certificate": "...", "certificateChain": "... (optional)", "privateKey": "..."}

    (the fields of ACM's and AWS Private CA's export). One secret, so a certificate and its
    key always change together. The function is granted ``secretsmanager:GetSecretValue`` on
    this secret only (and ``kms:Decrypt`` through Secrets Manager when the secret has a key of
    its own); it reads the value at run time, keeps it five minutes, and reads it again at once
    when the core system refuses the handshake. The key is never in the environment and never
    written to a file system (payment_posting_functions/domain/client_certificate.py).
    """

    secret: secretsmanager.ISecret


@dataclass(frozen=True)
class CoreBankingNetwork:
    """The posting function inside a VPC, allowed out on 443 to the core system only.

    :param vpc: the VPC with a route to the core system.
    :param core_system: where the core system is: ``ec2.Peer.ipv4("10.20.0.0/16")`` or
        ``ec2.Peer.prefix_list("pl-...")``.
    :param subnets: default: the VPC's private subnets with egress.
    :param aws_endpoints: the function also calls DynamoDB, EventBridge and Secrets Manager:
        the peers (VPC endpoint security groups or prefix lists) it may reach on 443 for them.
        Default none: the subnets' route to those APIs is the deployer's (a gateway endpoint's
        prefix list, interface endpoints or a NAT), and without one here the function reaches
        none of them (on AWS its calls time out; the local run refuses them the same way).
    :param core_system_port: the TCP port the core system listens on. Default: the URL's port
        (443 when the URL has none or is a token); a different port given with a URL whose
        port is known is refused at synth, as the group would block the calls.
    """

    vpc: ec2.IVpc
    core_system: ec2.IPeer
    subnets: ec2.SubnetSelection | None = None
    aws_endpoints: Sequence[ec2.IPeer] = field(default_factory=tuple)
    core_system_port: int | None = None

    def __post_init__(self) -> None:
        port = self.core_system_port
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            raise ValueError(
                f"CoreBankingNetwork: core_system_port must be a TCP port (1 to 65535), "
                f"got {port!r}"
            )


@dataclass(frozen=True)
class HttpSettings:
    url: str
    credentials: CoreBankingCredentials | None
    client_certificate: CoreBankingClientCertificate | None
    ca_bundle: CaBundle | None
    network: CoreBankingNetwork | None
    on_409: ConflictMeaning
    request_timeout: Duration
    connect_timeout: Duration
    attempts: int
    backoff: Duration

    def worst_case_seconds(self) -> float:
        """The longest one posting can take: every try times out, every backoff sleeps its
        most (``payment_posting_functions.domain.http_posting.worst_case_seconds``, the same
        arithmetic)."""
        timeouts = _seconds(self.request_timeout) + _seconds(self.connect_timeout)
        backoff = _seconds(self.backoff)
        return float(
            self.attempts * timeouts + sum(backoff * 2**n for n in range(self.attempts - 1))
        )


@dataclass(frozen=True)
class PostingTarget:
    """Where approved transactions are posted: ``PostingTarget.ledger()`` (the default) or
    ``PostingTarget.http(...)``."""

    kind: PostingKind
    http_settings: HttpSettings | None = None

    @classmethod
    def ledger(cls) -> PostingTarget:
        """The built-in double-entry ledger on DynamoDB."""
        return cls(PostingKind.LEDGER)

    @classmethod
    def http(
        cls,
        url: str,
        *,
        credentials: CoreBankingCredentials | None = None,
        client_certificate: CoreBankingClientCertificate | None = None,
        ca_bundle: CaBundle | None = None,
        network: CoreBankingNetwork | None = None,
        on_409: ConflictMeaning = ConflictMeaning.ALREADY_POSTED,
        request_timeout: Duration | None = None,
        connect_timeout: Duration | None = None,
        attempts: int = 3,
        backoff: Duration | None = None,
    ) -> PostingTarget:
        """A core-banking API: ``POST {url}/postings`` with an Idempotency-Key.

        :param url: ``https://host[:port][/path]``; no credentials in it (``credentials``).
        :param credentials: a Secrets Manager secret sent as one header. Default: none.
        :param client_certificate: a client certificate and key in a Secrets Manager secret,
            presented when the core system asks (mutual TLS); alone or with ``credentials``.
            Default: none. Without either, the core system authenticates by network alone.
        :param ca_bundle: the CA to trust instead of the public ones. Default: public CAs.
        :param network: VPC placement with egress to the core system only. Default: none
            (Lambda's own network; the compliance packs then ask about it).
        :param on_409: default ``ALREADY_POSTED``.
        :param request_timeout: read timeout of one try. Default 3 seconds.
        :param connect_timeout: connect timeout of one try. Default 1 second.
        :param attempts: tries of one posting when no answer came (1 to 10). Default 3.
        :param backoff: the first backoff ceiling, doubled per retry (full jitter).
            Default 200 ms.
        """
        if not isinstance(url, str):
            raise TypeError(f"PostingTarget.http: url must be a str, got {type(url).__name__}")
        if not Token.is_unresolved(url):
            _check_url(url)
        if not isinstance(on_409, ConflictMeaning):
            raise TypeError(f"PostingTarget.http: on_409 must be a ConflictMeaning, got {on_409!r}")
        if credentials is not None and not isinstance(credentials, CoreBankingCredentials):
            raise TypeError("PostingTarget.http: credentials must be CoreBankingCredentials")
        if client_certificate is not None and not isinstance(
            client_certificate, CoreBankingClientCertificate
        ):
            raise TypeError(
                "PostingTarget.http: client_certificate must be CoreBankingClientCertificate"
            )
        if ca_bundle is not None and not isinstance(ca_bundle, CaBundle):
            raise TypeError("PostingTarget.http: ca_bundle must be a CaBundle")
        if network is not None and not isinstance(network, CoreBankingNetwork):
            raise TypeError("PostingTarget.http: network must be a CoreBankingNetwork")
        if network is not None:
            network = _with_port(network, url)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise ValueError(f"PostingTarget.http: attempts must be 1 to 10, got {attempts!r}")
        settings = HttpSettings(
            url=url,
            credentials=credentials,
            client_certificate=client_certificate,
            ca_bundle=ca_bundle,
            network=network,
            on_409=on_409,
            request_timeout=request_timeout or Duration.seconds(3),
            connect_timeout=connect_timeout or Duration.seconds(1),
            attempts=attempts,
            backoff=backoff or Duration.millis(200),
        )
        for name in ("request_timeout", "connect_timeout"):
            value = getattr(settings, name)
            if not isinstance(value, Duration) or _seconds(value) <= 0:
                raise ValueError(f"PostingTarget.http: {name} must be a positive Duration")
        return cls(PostingKind.HTTP, settings)


def _with_port(network: CoreBankingNetwork, url: str) -> CoreBankingNetwork:
    """The network with the core system's port settled: the URL's, when it can be read."""
    url_port = None if Token.is_unresolved(url) else (urlsplit(url).port or HTTPS_PORT)
    given = network.core_system_port
    if url_port is not None and given is not None and given != url_port:
        raise ValueError(
            f"PostingTarget.http: the url's port is {url_port} but the network allows the "
            f"core system on {given}: the function's security group would block every call"
        )
    return replace(network, core_system_port=given or url_port or HTTPS_PORT)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(
            f"PostingTarget.http: url must be https://host[:port][/path] (the posting "
            f"carries account data: TLS only), got {url!r}"
        )
    if "@" in parts.netloc:
        # Not echoed: it holds a credential.
        raise ValueError(
            "PostingTarget.http: url must not carry credentials (user:password@); pass a "
            "Secrets Manager secret as credentials=CoreBankingCredentials(secret)"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            "PostingTarget.http: url must be https://host[:port][/path], without query or fragment"
        )


def _seconds(duration: Duration) -> float:
    """Seconds, fractions kept (Duration.to_seconds refuses 500 millis)."""
    return duration.to_milliseconds() / 1000


def _is_token_name(name: str) -> bool:
    allowed = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return bool(name) and set(name) <= allowed
