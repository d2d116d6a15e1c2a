"""Client channels to the settlement service, built once for every party.

* :func:`client_channel`: TLS with a CA (``TlsMaterial(ca)``), mutual TLS with a
  client certificate and key (``TlsMaterial(ca, cert, key)``), or plaintext
  (``insecure``) to a loopback target only.
* :func:`is_loopback_target` / :func:`is_loopback_host`: the one loopback parser.
  Accepted: ``localhost``, IPv4 ``127.0.0.0/8``, IPv6 ``::1`` (bracketed when a
  port follows), each with an optional port, and gRPC's ``ipv4:``/``ipv6:``
  address schemes around them. Refused: everything else (other names, unspecified
  addresses, IPv4-mapped IPv6, zone indices, ``dns:``/``unix:`` URIs, empty hosts,
  bad ports).
* :data:`ROLE_METADATA_KEY`, :data:`IDENTITY_METADATA_KEY`, :func:`dev_metadata`:
  the metadata with which a caller names its role and identity to a server in
  insecure (development) mode; the server reads the same constants
  (:mod:`service.auth`).

``grpc`` is imported inside :func:`client_channel` only, so that importing this
module (the command line does) stays cheap.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zkgrid._internal.files import read_file, read_private
from zkgrid.errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    import grpc

__all__ = [
    "IDENTITY_METADATA_KEY",
    "MAX_PEM_BYTES",
    "ROLE_METADATA_KEY",
    "ChannelConfigError",
    "Metadata",
    "TlsMaterial",
    "client_channel",
    "dev_metadata",
    "is_loopback_host",
    "is_loopback_target",
    "split_host_port",
]

#: Dev-only metadata naming the caller's role in insecure mode.
ROLE_METADATA_KEY = "x-zkgrid-role"
#: Dev-only metadata naming the caller's identity (e.g. the meter id) in insecure mode.
IDENTITY_METADATA_KEY = "x-zkgrid-identity"
#: Largest certificate bundle or key file read.
MAX_PEM_BYTES = 1 << 20

Metadata = tuple[tuple[str, str], ...]

_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")


class ChannelConfigError(InvalidArgumentError):
    """A channel that must not (or cannot) be built: insecure to a non-loopback target,
    TLS without a CA, a certificate without its key, a malformed address."""


def dev_metadata(role: str, identity: str | None = None) -> Metadata:
    """The insecure-mode metadata naming ``role`` and ``identity`` (default: the role)."""
    return ((ROLE_METADATA_KEY, role), (IDENTITY_METADATA_KEY, identity or role))


def split_host_port(address: str, *, require_port: bool = False) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> ``(host, port or None)``.

    A bare IPv6 literal (``::1``) is read as a host without a port. Raises
    :class:`ChannelConfigError` for an empty host, a port that is not a decimal in
    ``[0, 65535]`` or a missing port when ``require_port``.
    """
    if not isinstance(address, str) or not address or address != address.strip():
        raise ChannelConfigError(f"address {address!r} is not host:port")
    host, port_text = address, None
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ChannelConfigError(f"address {address!r} has an unclosed '['")
        host, rest = address[1:end], address[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ChannelConfigError(f"address {address!r} is not [host]:port")
            port_text = rest[1:]
    elif address.count(":") == 1:
        host, port_text = address.split(":")
    elif address.count(":") > 1:
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise ChannelConfigError(
                f"address {address!r}: write an IPv6 address with a port as [host]:port"
            ) from None
    if not host:
        raise ChannelConfigError(f"address {address!r} has no host")
    if port_text is None:
        if require_port:
            raise ChannelConfigError(f"address {address!r} is not host:port")
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ChannelConfigError(f"address {address!r}: the port is not a decimal number")
    port = int(port_text)
    if port > 65535:
        raise ChannelConfigError(f"address {address!r}: port {port} is out of range")
    return host, port


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` (any case), an IPv4 address in ``127.0.0.0/8`` and ``::1``
    (with or without brackets); False for anything else."""
    if not isinstance(host, str):
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() == "localhost":
        return True
    if "%" in host:  # a zone index: never a loopback we can vouch for
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4
    return address == _LOOPBACK_V6


def is_loopback_target(target: str) -> bool:
    """True when the gRPC ``target`` can only reach this machine's loopback interface."""
    if not isinstance(target, str):
        return False
    address = target
    for scheme in ("ipv4:", "ipv6:"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
            if "," in address:  # several addresses: refused rather than checked one by one
                return False
            break
    try:
        host, _port = split_host_port(address)
    except ChannelConfigError:
        return False
    return is_loopback_host(host)


@dataclass(frozen=True)
class TlsMaterial:
    """The client's TLS material (PEM bytes): the CA that signed the server and, for mutual
    TLS, the client certificate chain and its private key (hidden from ``repr``)."""

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.ca:
            raise ChannelConfigError("TLS needs the CA certificate of the service")
        if (self.cert is None) != (self.key is None):
            raise ChannelConfigError("a client certificate and its key go together")

    @classmethod
    def from_files(
        cls,
        ca: str | os.PathLike[str],
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        *,
        role: str | None = None,
        identity: str | None = None,
    ) -> TlsMaterial:
        """Read the files; the key must be private to its owner (``chmod 600``). They are
        checked before anything is sent (:meth:`check`)."""
        if (cert is None) != (key is None):
            raise ChannelConfigError("a client certificate and its key go together")
        material = cls(
            ca=read_file(ca, max_bytes=MAX_PEM_BYTES),
            cert=None if cert is None else read_file(cert, max_bytes=MAX_PEM_BYTES),
            key=None if key is None else read_private(key, max_bytes=MAX_PEM_BYTES),
        )
        material.check(role=role, identity=identity, names=(str(ca), str(cert), str(key)))
        return material

    def check(
        self,
        *,
        role: str | None = None,
        identity: str | None = None,
        names: tuple[str, str, str] = ("--ca", "--cert", "--key"),
    ) -> None:
        """What can be checked here, before a handshake or any proving: the CA bundle
        parses; the client certificate parses and belongs to the key; its role (the
        subject's OU) is ``role`` and its CN ``identity`` when they are given (the command
        needs them: a meter's own id, the utility's role). :class:`ChannelConfigError`
        naming the file and what to do."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import NameOID

        ca_name, cert_name, key_name = names
        try:
            x509.load_pem_x509_certificates(self.ca)
        except ValueError:
            raise ChannelConfigError(
                f"{ca_name} is not a PEM certificate bundle (pass the CA that signed the"
                " service's certificate)"
            ) from None
        if self.cert is None or self.key is None:
            return
        try:
            cert = x509.load_pem_x509_certificate(self.cert)
        except ValueError:
            raise ChannelConfigError(f"{cert_name} is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(self.key, password=None)
        except (ValueError, TypeError):
            raise ChannelConfigError(f"{key_name} is not an unencrypted PEM private key") from None
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            raise ChannelConfigError(
                f"{key_name} is not the key of {cert_name}: pass the key issued with that"
                " certificate"
            )
        subject = cert.subject
        units = [
            str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        ]
        names_cn = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if role is not None and units != [role]:
            found = ", ".join(units) or "none"
            raise ChannelConfigError(
                f"{cert_name} is a certificate for the role {found}; this command needs a"
                f" {role} certificate (OU={role})"
            )
        if identity is not None and names_cn != [identity]:
            found = ", ".join(names_cn) or "none"
            raise ChannelConfigError(
                f"{cert_name} is issued to {found}, not to {identity}: pass the certificate of"
                f" {identity}"
            )


def client_channel(
    target: str, *, tls: TlsMaterial | None = None, insecure: bool = False
) -> grpc.Channel:
    """A channel to ``target``: TLS (``tls``), or plaintext to a loopback target
    (``insecure``, development only). Exactly one of the two."""
    import grpc

    if insecure:
        if tls is not None:
            raise ChannelConfigError("--insecure cannot be combined with --ca/--cert/--key")
        if not is_loopback_target(target):
            raise ChannelConfigError(
                f"--insecure is for a loopback target only (localhost, 127.0.0.0/8, [::1]),"
                f" not {target!r}"
            )
        return grpc.insecure_channel(target)
    if tls is None:
        raise ChannelConfigError("TLS needs --ca (and --cert/--key for mutual TLS), or --insecure")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )
    return grpc.secure_channel(target, credentials)
