"""The Kafka security settings: refused at start-up with the variable named, and applied
alike to every client (aiokafka keyword arguments, Faust credentials)."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import faust
import pytest
import trustme

from sinks.errors import ConfigurationError
from streams.settings import load_settings

ROOT = Path(__file__).parents[2]


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def settings_with(monkeypatch: pytest.MonkeyPatch, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ConfigurationError) as refused:
        settings_with(monkeypatch, **env)
    return str(refused.value)


def test_plaintext_by_default(monkeypatch):
    kafka = settings_with(monkeypatch, KAFKA_BOOTSTRAP_SERVERS="b1:9092,b2:9092").kafka
    assert kafka.client_options() == {
        "bootstrap_servers": "b1:9092,b2:9092", "security_protocol": "PLAINTEXT",
    }  # fmt: skip
    assert kafka.faust_credentials() is None


def test_sasl_ssl_reaches_aiokafka_and_faust_with_one_tls_context(monkeypatch, ca_file):
    kafka = settings_with(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="sasl_ssl", KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="svc", KAFKA_SASL_PASSWORD="pw", KAFKA_SSL_CA_FILE=str(ca_file),
    ).kafka  # fmt: skip
    options = kafka.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-512", "svc")
    assert options["sasl_plain_password"] == "pw"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert kafka.client_options()["ssl_context"] is options["ssl_context"]
    credentials = kafka.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert "pw" not in repr(kafka)


def test_tls_alone_is_ssl_credentials(monkeypatch, ca_file):
    kafka = settings_with(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(ca_file)
    ).kafka
    assert isinstance(kafka.faust_credentials(), faust.SSLCredentials)
    assert "sasl_mechanism" not in kafka.client_options()


def test_a_mistyped_protocol_is_named_with_the_value(monkeypatch):
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="SASL-SSL")
    assert message.startswith("KAFKA_SECURITY_PROTOCOL: ")
    assert "'SASL-SSL'" in message


def test_a_mechanism_the_client_does_not_speak_is_refused(monkeypatch):
    message = refusal(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="GSSAPI",
        KAFKA_SASL_USERNAME="svc", KAFKA_SASL_PASSWORD="pw",
    )  # fmt: skip
    assert message.startswith("KAFKA_SASL_MECHANISM: ")
    assert "SCRAM-SHA-512" in message


def test_sasl_without_credentials_names_both_variables(monkeypatch):
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT")
    assert "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD" in message


def test_a_missing_certificate_file_is_named(monkeypatch, tmp_path):
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL",
                      KAFKA_SSL_CA_FILE=str(tmp_path / "missing.pem"))  # fmt: skip
    assert message.startswith("KAFKA_SSL_CA_FILE: ")
    assert "cannot be read" in message


def test_an_unreadable_key_file_is_named(monkeypatch, tmp_path, ca_file):
    """A directory cannot be read as a file, even by root (who reads a mode-000 file)."""
    message = refusal(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CERT_FILE=str(ca_file),
        KAFKA_SSL_KEY_FILE=str(tmp_path),
    )  # fmt: skip
    assert message.startswith("KAFKA_SSL_KEY_FILE: ")
    assert "cannot be read" in message


def test_a_certificate_given_as_the_key_is_refused(monkeypatch, ca_file):
    message = refusal(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CERT_FILE=str(ca_file),
        KAFKA_SSL_KEY_FILE=str(ca_file),
    )  # fmt: skip
    assert message.startswith("KAFKA_SSL_KEY_FILE: ")
    assert "PRIVATE KEY" in message


def test_a_certificate_without_its_key_is_refused(monkeypatch, ca_file):
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CERT_FILE=str(ca_file))
    assert "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together" in message


def test_a_wrong_pem_file_is_refused(monkeypatch, tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(not_pem))
    assert message.startswith("KAFKA_SSL_CA_FILE: ")
    assert "not a PEM file" in message


def test_the_process_stops_with_one_line_and_status_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "streams", "worker"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "KAFKA_SECURITY_PROTOCOL": "SASL_SSLX"}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "refstream: configuration error: KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT', "
        "'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL', not 'SASL_SSLX'"
    ]
