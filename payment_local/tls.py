"""A certificate authority of the local runtime's own: a root, optionally intermediates, a
server certificate for 127.0.0.1 and client certificates on request.

The fake core-banking server presents a certificate this CA signed; the posting function
trusts the CA through the construct's CA bundle, as it would a bank's private CA. For mutual
TLS the server asks for a client certificate the same CA issued, which the runtime puts into
the function's Secrets Manager secret. Everything lives in memory and, for the moment
``load_cert_chain`` needs a file, in a private temporary directory: nothing here is a secret
worth keeping.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"
_VALIDITY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class LocalCertificateAuthority:
    """A CA (``ca_pem``: the root, then any intermediates, as a bank hands out its bundle), a
    server certificate for ``host`` signed by the last of them (``server_certificate_pem``:
    the certificate, then the intermediates, as a server presents its chain), and that
    issuing CA's certificate and key, for client certificates."""

    ca_pem: str
    server_certificate_pem: bytes
    server_key_pem: bytes = field(repr=False)
    issuer_certificate_pem: bytes
    issuer_key_pem: bytes = field(repr=False)
    intermediates_pem: bytes = b""
    host: str = LOOPBACK

    @classmethod
    def generate(
        cls,
        host: str = LOOPBACK,
        *,
        name: str = "payments-local test CA",
        intermediates: int = 0,
        rsa_key_size: int | None = None,
    ) -> LocalCertificateAuthority:
        """A fresh CA.

        :param intermediates: CAs between the root and the certificates it issues.
        :param rsa_key_size: RSA keys of this size for the CAs (a bank's usual 4096 makes
            large bundles); default P-256 keys, small and quick.
        """
        root_key = _key(rsa_key_size)
        root_name = _name(name)
        root = _ca_certificate(root_name, root_key, root_name, root_key, path_length=intermediates)
        chain: list[x509.Certificate] = []
        issuer, issuer_key = root, root_key
        for level in range(1, intermediates + 1):
            key = _key(rsa_key_size)
            intermediate = _ca_certificate(
                _name(f"{name} intermediate {level}"),
                key,
                issuer.subject,
                issuer_key,
                path_length=intermediates - level,
            )
            chain.append(intermediate)
            issuer, issuer_key = intermediate, key
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _leaf_certificate(
            _name(host),
            server_key.public_key(),
            issuer,
            issuer_key,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            address=host,
        )
        intermediates_pem = b"".join(_pem(c) for c in reversed(chain))
        return cls(
            ca_pem=(_pem(root) + b"".join(_pem(c) for c in chain)).decode(),
            server_certificate_pem=_pem(server) + intermediates_pem,
            server_key_pem=_private_pem(server_key),
            issuer_certificate_pem=_pem(issuer),
            issuer_key_pem=_private_pem(issuer_key),
            intermediates_pem=intermediates_pem,
            host=host,
        )

    def issue_client_certificate(self, common_name: str) -> tuple[str, str]:
        """A client certificate for ``common_name`` from the issuing CA: (the certificate and
        the intermediates, PEM; its private key, PKCS#8 PEM)."""
        issuer = x509.load_pem_x509_certificate(self.issuer_certificate_pem)
        issuer_key = serialization.load_pem_private_key(self.issuer_key_pem, password=None)
        if not isinstance(issuer_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise TypeError("the issuing CA's key is neither EC nor RSA")
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _leaf_certificate(
            _name(common_name),
            key.public_key(),
            issuer,
            issuer_key,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        return (_pem(certificate) + self.intermediates_pem).decode(), _private_pem(key).decode()

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting the server certificate (TLS 1.2 at least)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: a private directory that is gone right after.
        with tempfile.TemporaryDirectory() as directory:
            certificate = Path(directory) / "server.pem"
            key = Path(directory) / "server.key"
            certificate.write_bytes(self.server_certificate_pem)
            key.touch(mode=0o600)
            key.write_bytes(self.server_key_pem)
            context.load_cert_chain(certificate, key)
        return context


def _key(rsa_key_size: int | None) -> CertificateIssuerPrivateKeyTypes:
    if rsa_key_size is None:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_key_size)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + _VALIDITY
    )


def _ca_certificate(
    subject: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: x509.Name,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    path_length: int,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return _validity(builder).sign(issuer_key, hashes.SHA256())


def _leaf_certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    usage: x509.ObjectIdentifier,
    address: str | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if address is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
    return _validity(builder).sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _private_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
