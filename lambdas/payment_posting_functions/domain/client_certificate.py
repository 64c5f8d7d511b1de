"""A TLS client certificate for mutual TLS with the core system, and loading it with its key.

It is kept in one Secrets Manager secret as JSON, so a certificate and its key always change
together (one secret version holds a matching pair; two secrets could be read mid-rotation at
different versions)::

    {"certificate": "<PEM>", "certificateChain": "<PEM, optional>", "privateKey": "<PEM>"}

(the field names of ACM's and AWS Private CA's certificate export). The key is unencrypted
PEM: the secret is what protects it.

Python's ``SSLContext.load_cert_chain`` reads files only. On Linux, Lambda's platform, the key
goes into an anonymous in-memory file (``memfd_create``), which OpenSSL opens by its
``/proc/self/fd`` path: it is never on a file system, and the memory is freed when the
descriptor is closed, right after loading. Where that is not available, a file that only this
user may read (0600, in a 0700 directory) holds it for the duration of the call and is
removed at once.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY_END = "PRIVATE KEY-----"


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate chain (the certificate first) and its private key, both PEM."""

    certificate_chain_pem: str
    private_key_pem: str = field(repr=False)

    def __post_init__(self) -> None:
        # The messages never quote the values: one of them is a key.
        if _CERTIFICATE not in self.certificate_chain_pem:
            raise ValueError("the client certificate is not a PEM certificate")
        if _PRIVATE_KEY_END not in self.private_key_pem:
            raise ValueError("the client certificate's private key is not a PEM private key")
        if "ENCRYPTED PRIVATE KEY" in self.private_key_pem:
            raise ValueError(
                "the client certificate's private key is encrypted; keep it unencrypted in "
                "the secret (the secret protects it)"
            )

    @classmethod
    def from_secret_string(cls, text: str) -> ClientCertificate:
        """From the secret's JSON (``certificate``, optional ``certificateChain``,
        ``privateKey``)."""
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ValueError(
                "the client certificate secret is not a JSON object with certificate and privateKey"
            )
        certificate = document.get("certificate")
        chain = document.get("certificateChain") or ""
        key = document.get("privateKey")
        if not isinstance(certificate, str) or not isinstance(key, str):
            raise ValueError("the client certificate secret lacks certificate or privateKey")
        if not isinstance(chain, str):
            raise ValueError("the client certificate secret's certificateChain is not text")
        return cls(_joined(certificate, chain), key)


def load_client_certificate(context: ssl.SSLContext, certificate: ClientCertificate) -> None:
    """Make ``context`` present ``certificate`` when the server asks for one."""
    # One file with the key and then the chain: load_cert_chain takes the key from the
    # certificate file when no key file is given.
    contents = _joined(certificate.private_key_pem, certificate.certificate_chain_pem).encode()
    try:
        with _memory_file(contents) as path:
            context.load_cert_chain(path)
            return
    except _NoMemoryFileError:
        pass
    with _private_file(contents) as path:
        context.load_cert_chain(path)


class _NoMemoryFileError(Exception):
    """This platform has no anonymous in-memory file that OpenSSL can open by path."""


@contextmanager
def _memory_file(contents: bytes) -> Iterator[str]:
    create = getattr(os, "memfd_create", None)
    if create is None:
        raise _NoMemoryFileError
    try:
        descriptor = create("core-banking-client", getattr(os, "MFD_CLOEXEC", 0))
    except OSError as error:  # not allowed in this sandbox
        raise _NoMemoryFileError from error
    try:
        path = f"/proc/self/fd/{descriptor}"
        if not os.path.exists(path):  # no /proc: OpenSSL could not open it
            raise _NoMemoryFileError
        view = memoryview(contents)
        while view:
            view = view[os.write(descriptor, view) :]
        yield path
    finally:
        os.close(descriptor)


@contextmanager
def _private_file(contents: bytes) -> Iterator[str]:
    # mkdtemp makes a 0700 directory and mkstemp a 0600 file: nobody else reads the key.
    with tempfile.TemporaryDirectory(prefix="core-banking-client-") as directory:
        descriptor, name = tempfile.mkstemp(dir=directory, suffix=".pem")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(contents)
            yield name
        finally:
            Path(name).unlink(missing_ok=True)


def _joined(first: str, second: str) -> str:
    """Two PEM texts, one after the other on lines of their own."""
    if not second:
        return first
    return first.rstrip("\n") + "\n" + second
