"""zkgrid._internal.channels: the one loopback parser, TLS material and client channels."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from service import auth
from service.config import ConfigError, ServiceConfig, is_loopback, split_listen
from service.pki import create_ca, issue_client, write_issued
from verifier.sources import is_loopback as verifier_is_loopback
from zkgrid._internal.channels import (
    IDENTITY_METADATA_KEY,
    ROLE_METADATA_KEY,
    ChannelConfigError,
    TlsMaterial,
    client_channel,
    dev_metadata,
    is_loopback_host,
    is_loopback_target,
    split_host_port,
)
from zkgrid._internal.files import InsecurePermissionsError

ACCEPTED = [
    "localhost",
    "localhost:50051",
    "LOCALHOST:1",
    "127.0.0.1",
    "127.0.0.1:50051",
    "127.255.255.254:0",
    "127.8.9.10:65535",
    "[::1]",
    "[::1]:50051",
    "::1",
    "ipv4:127.0.0.1:50051",
    "ipv6:[::1]:50051",
]

REFUSED = [
    "",
    " localhost:1",
    "localhost:1 ",
    "example.com:50051",
    "localhost.example.com:1",
    "localhost.:1",
    "10.1.2.3:50051",
    "192.0.2.1:1",
    "0.0.0.0:50051",
    "[::]:50051",
    "::",
    "128.0.0.1:1",
    "126.255.255.255:1",
    "[::2]:1",
    "[::ffff:127.0.0.1]:1",  # IPv4-mapped: not the loopback interface's address
    "[::1%lo]:1",  # zone index
    "[::1",
    "[::1]x",
    "[::1]:",
    "127.0.0.1:",
    "127.0.0.1:port",
    "127.0.0.1:65536",
    "127.0.0.1:-1",
    "127.0.0.1:+1",
    "127.0.0.1:١٢",  # non-ASCII digits
    ":50051",
    "127.1:1",
    "127.000.000.001:1",
    "::1:50051",  # ambiguous without brackets
    "dns:///localhost:50051",
    "unix:/tmp/socket",
    "ipv4:127.0.0.1:1,10.0.0.1:1",
    "localhost:1:2",
]


@pytest.mark.parametrize("target", ACCEPTED)
def test_loopback_targets_accepted(target: str) -> None:
    assert is_loopback_target(target)


@pytest.mark.parametrize("target", REFUSED)
def test_other_targets_refused(target: str) -> None:
    assert not is_loopback_target(target)


def test_the_parties_share_the_one_parser() -> None:
    for target in ACCEPTED + REFUSED:
        assert verifier_is_loopback(target) == is_loopback_target(target), target


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, expected: bool) -> None:
    assert is_loopback_host(host) is expected
    assert is_loopback(host) is expected  # the server's listen check is the same parser


def test_split_host_port() -> None:
    assert split_host_port("localhost:50051") == ("localhost", 50051)
    assert split_host_port("[::1]:0") == ("::1", 0)
    assert split_host_port("[::]:7") == ("::", 7)
    assert split_host_port("127.0.0.1") == ("127.0.0.1", None)
    assert split_host_port("::1") == ("::1", None)
    with pytest.raises(ChannelConfigError, match="not host:port"):
        split_host_port("127.0.0.1", require_port=True)
    with pytest.raises(ChannelConfigError, match="out of range"):
        split_host_port("h:70000")
    assert split_listen("[::1]:50051") == ("::1", 50051)
    with pytest.raises(ConfigError, match="not host:port"):
        split_listen("localhost")


def test_server_refuses_insecure_on_a_non_loopback_listen_address() -> None:
    ServiceConfig(listen="127.3.2.1:0", insecure=True).validate()
    with pytest.raises(ConfigError, match="loopback"):
        ServiceConfig(listen="[::ffff:127.0.0.1]:0", insecure=True).validate()


def test_insecure_channel_only_to_loopback() -> None:
    with pytest.raises(ChannelConfigError, match="loopback"):
        client_channel("192.0.2.1:50051", insecure=True)
    with pytest.raises(ChannelConfigError, match="cannot be combined"):
        client_channel("127.0.0.1:1", insecure=True, tls=TlsMaterial(b"ca"))
    with pytest.raises(ChannelConfigError, match="--ca"):
        client_channel("127.0.0.1:1")
    channel = client_channel("127.0.0.1:1", insecure=True)
    try:
        assert isinstance(channel, grpc.Channel)
    finally:
        channel.close()


def test_tls_material_from_files(tmp_path: Path) -> None:
    ca = create_ca()
    ca_pem, _ = write_issued(ca, tmp_path, "ca")
    cert, key = write_issued(issue_client(ca, "auditor", "auditor"), tmp_path, "auditor")
    material = TlsMaterial.from_files(ca_pem, cert, key)
    assert material.ca == ca_pem.read_bytes()
    assert material.key == key.read_bytes()
    assert "PRIVATE" not in repr(material)
    channel = client_channel("localhost:1", tls=material)
    channel.close()
    assert TlsMaterial.from_files(ca_pem).cert is None  # TLS without a client certificate
    with pytest.raises(ChannelConfigError, match="go together"):
        TlsMaterial.from_files(ca_pem, cert, None)
    os.chmod(key, 0o644)
    with pytest.raises(InsecurePermissionsError, match=f"chmod 600 {key}"):
        TlsMaterial.from_files(ca_pem, cert, key)


def test_dev_metadata_constants_are_the_servers() -> None:
    assert auth.ROLE_METADATA_KEY == ROLE_METADATA_KEY == "x-zkgrid-role"
    assert auth.IDENTITY_METADATA_KEY == IDENTITY_METADATA_KEY == "x-zkgrid-identity"
    assert dev_metadata("auditor") == (
        ("x-zkgrid-role", "auditor"),
        ("x-zkgrid-identity", "auditor"),
    )
    caller = auth.caller_from_metadata(dict(dev_metadata("meter", "m-1")))
    assert caller == auth.Caller(auth.Role.METER, "m-1")
