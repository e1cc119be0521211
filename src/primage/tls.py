"""A certificate authority made for one run (or one notebook), and a server certificate signed by it:
for loopback, or for the addresses a notebook is published at.

The services the tests start on 127.0.0.1 (the TLS registry, the OpenID Connect provider)
serve HTTPS with these, and their clients trust only this CA: no verification is ever
turned off. The keys are written mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1",)


@dataclass(frozen=True)
class ServerCertificates:
    ca: Path  # the CA certificate clients trust
    certificate: Path
    key: Path  # mode 0600


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_private(path: Path, data: bytes) -> Path:
    """Write a file only its owner can read, created so (never briefly readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)
    return path


def loopback_certificates(folder: Path, ca_name: str, prefix: str = "server", days: int = 1) -> ServerCertificates:
    """A new CA (`ca.crt`) and `<prefix>.crt`/`<prefix>.key` for localhost and 127.0.0.1, in `folder`."""
    return server_certificates(folder, ca_name, LOOPBACK_NAMES, LOOPBACK_ADDRESSES, prefix, days)


def server_certificates(
    folder: Path,
    ca_name: str,
    names: tuple[str, ...] | list[str],
    addresses: tuple[str, ...] | list[str],
    prefix: str = "server",
    days: int = 1,
) -> ServerCertificates:
    """A new CA (`ca.crt`) and `<prefix>.crt`/`<prefix>.key` for these host names and IP addresses."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives = [x509.DNSName(name) for name in names]
    alternatives += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name((list(names) or list(addresses))[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    result = ServerCertificates(folder / "ca.crt", folder / f"{prefix}.crt", folder / f"{prefix}.key")
    result.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    result.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    write_private(
        result.key,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return result
