"""``zkgrid certs``: an existing CA or certificate is never replaced unless asked; the
server certificate covers the names given with --host."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509

from service import pki


def _sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in names}


def test_init_refuses_to_replace_a_ca_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = tmp_path / "pki"
    assert pki.main(["init", str(certs), "--host", "grid.example", "--host", "10.0.0.7"]) == 0
    assert {"grid.example", "localhost", "127.0.0.1", "::1"} <= _sans(certs / "server.pem")
    assert ipaddress.ip_address("10.0.0.7") in {
        n
        for n in x509.load_pem_x509_certificate((certs / "server.pem").read_bytes())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.IPAddress)
    }
    ca_before = (certs / "ca.pem").read_bytes()
    capsys.readouterr()
    assert pki.main(["init", str(certs)]) == 1
    err = capsys.readouterr().err
    assert "already holds a CA" in err
    assert "--force" in err
    assert (certs / "ca.pem").read_bytes() == ca_before  # untouched
    assert pki.main(["init", str(certs), "--force"]) == 0
    assert (certs / "ca.pem").read_bytes() != ca_before


def test_issue_refuses_to_replace_a_certificate_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = tmp_path / "pki"
    assert pki.main(["init", str(certs), "--meter", "m1"]) == 0
    before = (certs / "meter-m1.pem").read_bytes()
    capsys.readouterr()
    assert pki.main(["issue", str(certs), "--role", "meter", "--id", "m1"]) == 1
    assert "certificate for m1" in capsys.readouterr().err
    assert (certs / "meter-m1.pem").read_bytes() == before
    assert pki.main(["issue", str(certs), "--role", "meter", "--id", "m1", "--force"]) == 0
    assert pki.main(["issue", str(certs), "--role", "meter", "--id", "m2"]) == 0
