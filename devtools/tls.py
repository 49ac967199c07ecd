"""Certificates for the outside doors (``paygo tls init``): a CA of the company's own, the server
certificate that the broker's device listener and nginx (the web app, the device API) present, and
optional per-device client certificates (common name = the unit's serial).

A company with a PKI of its own gives its certificates to the same paths instead. The CA key never
needs to leave the machine that signs; units carry only ``ca.crt`` (and their own key pair).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from backoffice import clock
from backoffice.config import Settings

CA_DAYS = 10 * 365
LEAF_DAYS = 825  # what browsers and most TLS stacks accept for a leaf certificate
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


def tls_dir(settings: Settings) -> Path:
    """Where the certificates are: PAYGO_TLS_DIR, or PAYGO_HOME/tls."""
    return settings.tls_dir or settings.home_dir / "tls"


@dataclass(frozen=True)
class TlsFiles:
    """Where a TLS directory keeps its files."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"

    def device_cert(self, serial: str) -> Path:
        return self.dir / "devices" / f"{serial}.crt"

    def device_key(self, serial: str) -> Path:
        return self.dir / "devices" / f"{serial}.key"

    def ready(self) -> bool:
        return all(p.exists() for p in (self.ca_cert, self.ca_key, self.server_cert, self.server_key))


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    tmp.replace(path)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.ca_key} is not an EC key")
    return cert, key


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


def _org(cert: x509.Certificate) -> str:
    found = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(found[0].value) if found else "PAYGO"


def _usage(key_cert_sign: bool = False, crl_sign: bool = False, key_agreement: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=key_agreement, key_cert_sign=key_cert_sign,
                         crl_sign=crl_sign, encipher_only=False, decipher_only=False)  # fmt: skip


def make_ca(files: TlsFiles, org: str = "PAYGO") -> None:
    key = _key()
    now = clock.machine_now()  # peers judge validity on their own clocks, not on PAYGO_NOW
    name = _name(f"{org} device CA", org)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(files.ca_key, key)
    _write_cert(files.ca_cert, cert)


def _leaf(files: TlsFiles, common_name: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName],
          cert_path: Path, key_path: Path) -> None:  # fmt: skip
    ca_cert, ca_key = _load(files)
    key = _key()
    now = clock.machine_now()  # peers judge validity on their own clocks, not on PAYGO_NOW
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, _org(ca_cert)))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(key_agreement=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    _write_key(key_path, key)
    _write_cert(cert_path, builder.sign(ca_key, hashes.SHA256()))


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_server_cert(files: TlsFiles, hosts: list[str]) -> None:
    """The certificate of the broker's device listener and of nginx, valid for every name in ``hosts``."""
    _leaf(files, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, [_san(h) for h in hosts], files.server_cert,
          files.server_key)  # fmt: skip


def make_device_cert(files: TlsFiles, serial: str) -> None:
    """A unit's client certificate: its serial as common name (the broker can take it as the username)."""
    _leaf(files, serial, ExtendedKeyUsageOID.CLIENT_AUTH, [], files.device_cert(serial), files.device_key(serial))


def init(directory: Path, hosts: Sequence[str] = (), devices: Sequence[str] = (), force: bool = False) -> list[Path]:
    """Make what is missing (everything with ``force``): the CA, the server certificate for ``hosts``
    (default: the loopback names), a client certificate per serial. Returns the files written."""
    files = TlsFiles(directory)
    written: list[Path] = []
    if force or not (files.ca_cert.exists() and files.ca_key.exists()):
        make_ca(files)
        written += [files.ca_cert, files.ca_key]
        force = True  # everything signed by the old CA goes with it
    if force or not (files.server_cert.exists() and files.server_key.exists()):
        make_server_cert(files, list(hosts or DEFAULT_HOSTS))
        written += [files.server_cert, files.server_key]
    for serial in devices:
        if force or not files.device_cert(serial).exists():
            make_device_cert(files, serial)
            written += [files.device_cert(serial), files.device_key(serial)]
    return written
