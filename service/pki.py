"""A development certificate authority for the settlement service (``zkgrid certs``).

**For development, tests and the demo only**: keys are written unencrypted
(mode 0600). Production deployments use their own PKI; the server only needs
a server certificate and key, and the CA that signs client certificates.

Client certificates carry the caller's role in the subject's ``OU``
(``utility``, ``meter`` or ``auditor``) and its identity in the ``CN`` (for a
meter, its meter id): see :mod:`service.auth`. All keys are ECDSA P-256.

Layout written by ``zkgrid certs init DIR``::

    DIR/ca.pem, DIR/ca.key                  the CA (signs server and client certificates)
    DIR/server.pem, DIR/server.key          the server (SANs: localhost, 127.0.0.1, ::1 + --host)
    DIR/utility.pem, DIR/utility.key        a utility client (CN utility)
    DIR/auditor.pem, DIR/auditor.key        an auditor client (CN auditor)
    DIR/meter-<id>.pem, DIR/meter-<id>.key  one per --meter ID

``zkgrid certs issue DIR --role meter --id M1`` adds one client certificate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.auth import Role
from zkgrid._internal.cliargs import EXIT_STATUS
from zkgrid._internal.files import (
    FileExistsRefusedError,
    atomic_writer,
    read_file,
    read_private,
    write_new_private,
)
from zkgrid.errors import InvalidArgumentError, ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported where certificates are made (fast `--help`)
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "Issued",
    "create_ca",
    "issue_client",
    "issue_server",
    "load_issued",
    "main",
    "write_issued",
]

_VALIDITY = dt.timedelta(days=365)
_IDENTITY = re.compile(r"[A-Za-z0-9._@-]{1,128}", re.ASCII)
DEFAULT_SERVER_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Largest certificate or key file read back.
_MAX_PEM_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Issued:
    """A private key and its certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> Any:
    from cryptography import x509

    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def create_ca(common_name: str = "zkgrid dev CA") -> Issued:
    """A self-signed CA certificate (path length 0) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zkgrid development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def _leaf_usage() -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(ca: Issued, subject: x509.Name, usage: x509.ObjectIdentifier, sans: Any) -> Issued:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca.cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def issue_server(ca: Issued, hosts: Sequence[str] = DEFAULT_SERVER_HOSTS) -> Issued:
    """A server certificate for ``hosts`` (DNS names or IP addresses, as SANs)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hosts:
        raise InvalidArgumentError("a server certificate needs at least one host")
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zkgrid development"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]
    )
    return _issue(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, sans)


def issue_client(ca: Issued, role: Role | str, identity: str) -> Issued:
    """A client certificate: OU = ``role``, CN = ``identity`` (for a meter: its meter id)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    try:
        role = Role(role)
    except ValueError:
        raise InvalidArgumentError(f"role must be one of {[r.value for r in Role]}") from None
    if not _IDENTITY.fullmatch(identity):
        raise InvalidArgumentError("identity must be 1..128 of [A-Za-z0-9._@-]")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zkgrid development"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role.value),
            x509.NameAttribute(NameOID.COMMON_NAME, identity),
        ]
    )
    return _issue(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, None)


def write_issued(issued: Issued, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write ``stem.pem`` (0644) and ``stem.key`` (0600, never readable by others), each
    replaced atomically (:mod:`zkgrid._internal.files`)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    write_new_private(key_path, issued.key_pem, overwrite=True)
    with atomic_writer(cert_path, mode=0o644) as out:
        out.write(issued.cert_pem)
    return cert_path, key_path


def load_issued(directory: Path, stem: str) -> Issued:
    """Read ``stem.pem`` and ``stem.key`` back (e.g. the CA to issue more certificates); the
    key must be private to its owner."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert_pem = read_file(directory / f"{stem}.pem", max_bytes=_MAX_PEM_BYTES)
    key_pem = read_private(directory / f"{stem}.key", max_bytes=_MAX_PEM_BYTES)
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgumentError(f"{stem}.key is not an EC private key")
    return Issued(key, cert)


def _client_stem(role: Role, identity: str) -> str:
    return f"meter-{identity}" if role is Role.METER else identity


def main(argv: Sequence[str] | None = None) -> int:
    """``zkgrid certs``: create a development CA and certificates."""
    parser = argparse.ArgumentParser(
        prog="zkgrid certs",
        description="Development PKI for mutual TLS (unencrypted keys; not for production).",
        epilog=EXIT_STATUS,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser(
        "init", help="create a CA, a server certificate, utility and auditor clients"
    )
    init.add_argument("dir", type=Path, help="output directory")
    init.add_argument(
        "--host",
        action="append",
        default=[],
        help="extra server host name or IP (repeatable; localhost, 127.0.0.1, ::1 always)",
    )
    init.add_argument(
        "--meter", action="append", default=[], metavar="ID", help="also issue a meter cert"
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="replace an existing CA in DIR (every certificate it signed stops working)",
    )
    issue = sub.add_parser("issue", help="issue one client certificate with DIR's CA")
    issue.add_argument("dir", type=Path, help="directory holding ca.pem and ca.key")
    issue.add_argument("--role", required=True, choices=[r.value for r in Role])
    issue.add_argument("--id", required=True, dest="identity", help="CN: identity or meter id")
    issue.add_argument(
        "--force", action="store_true", help="replace an existing certificate of that name"
    )
    args = parser.parse_args(argv)
    try:
        written = _run(args)
    except FileExistsRefusedError as exc:  # refused: nothing was overwritten
        print(f"zkgrid certs: {exc}", file=sys.stderr)
        return 1
    except ZkgridError as exc:  # unreadable or exposed CA key, bad input
        print(f"zkgrid certs: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def _refuse_existing(directory: Path, stem: str, what: str, instead: str) -> None:
    existing = [p for p in (directory / f"{stem}.pem", directory / f"{stem}.key") if p.exists()]
    if existing:
        raise FileExistsRefusedError(
            f"{existing[0]} exists: {directory} already holds {what}; {instead}"
        )


def _run(args: argparse.Namespace) -> list[Path]:
    directory: Path = args.dir
    if args.command == "init":
        if not args.force:
            _refuse_existing(
                directory,
                "ca",
                "a CA (replacing it invalidates every certificate it signed)",
                f"add certificates with `zkgrid certs issue {directory} --role ROLE --id ID`,"
                " or pass --force to replace it",
            )
        ca = create_ca()
        written = [write_issued(ca, directory, "ca")[0]]
        hosts = [*DEFAULT_SERVER_HOSTS, *(h for h in args.host if h not in DEFAULT_SERVER_HOSTS)]
        written.append(write_issued(issue_server(ca, hosts), directory, "server")[0])
        clients = [(Role.UTILITY, "utility"), (Role.AUDITOR, "auditor")]
        clients += [(Role.METER, meter_id) for meter_id in args.meter]
    else:
        ca = load_issued(directory, "ca")
        written = []
        clients = [(Role(args.role), args.identity)]
        if not args.force:
            _refuse_existing(
                directory,
                _client_stem(Role(args.role), args.identity),
                f"a certificate for {args.identity}",
                "pass --force to replace it",
            )
    for role, identity in clients:
        stem = _client_stem(role, identity)
        written.append(write_issued(issue_client(ca, role, identity), directory, stem)[0])
    return written


if __name__ == "__main__":
    raise SystemExit(main())
