"""The self-signed TLS generator, checked by independent implementations: the `cryptography`
package's verifier, the openssl binary and a TLS handshake through Python's ssl module."""

from __future__ import annotations

import io
import json
import shutil
import ssl
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import verification

from stacks.assets.tls_bundle import handler as handler_module
from stacks.assets.tls_bundle.selfsigned import MARK, Bundle, make_bundle

NAMES = ("*.ec2.internal", "query.analytics.mlhpc.internal", "*.analytics.mlhpc.internal")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return make_bundle(NAMES, organization="mlhpc-test", days=30)


def certs(bundle: Bundle) -> tuple[x509.Certificate, x509.Certificate]:
    server, ca = x509.load_pem_x509_certificates(bundle.certificate_chain.encode())
    (trusted,) = x509.load_pem_x509_certificates(bundle.trusted_certificates.encode())
    assert trusted == ca
    return server, ca


def test_server_certificate_is_signed_by_the_ca(bundle: Bundle) -> None:
    server, ca = certs(bundle)
    server.verify_directly_issued_by(ca)  # raises on a bad signature or issuer mismatch
    ca.verify_directly_issued_by(ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is True and constraints.value.path_length == 0
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_cryptography_path_validation_accepts_the_chain_for_each_name(bundle: Bundle) -> None:
    """RFC 5280 path validation and host-name matching (cryptography's verifier, as a TLS client does)."""
    server, ca = certs(bundle)
    store = verification.Store([ca])
    for host in ("query.analytics.mlhpc.internal", "ip-10-0-1-2.ec2.internal"):
        verifier = verification.PolicyBuilder().store(store).build_server_verifier(x509.DNSName(host))
        chain = verifier.verify(server, [])
        assert chain == [server, ca]
    with pytest.raises(verification.VerificationError):
        verification.PolicyBuilder().store(store).build_server_verifier(x509.DNSName("example.com")).verify(
            server, []
        )


def test_names_usages_and_the_self_signed_mark(bundle: Bundle) -> None:
    server, ca = certs(bundle)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert tuple(san.get_values_for_type(x509.DNSName)) == NAMES
    usages = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH}
    for cert in (server, ca):
        unit = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        assert unit == MARK == "SELF-SIGNED - replace for production"
    assert server.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == NAMES[0]
    assert ca.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "mlhpc-test EMR CA"
    server_usage = server.extensions.get_extension_for_class(x509.KeyUsage).value
    ca_usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert server_usage.digital_signature and server_usage.key_encipherment and not server_usage.key_cert_sign
    assert ca_usage.key_cert_sign and ca_usage.crl_sign and not ca_usage.digital_signature
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert lifetime.days == 30


def test_private_key_is_pkcs8_and_matches_the_certificate(bundle: Bundle) -> None:
    key = serialization.load_pem_private_key(bundle.private_key.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    server, _ = certs(bundle)
    assert key.public_key().public_numbers() == server.public_key().public_numbers()
    assert bundle.private_key.startswith("-----BEGIN PRIVATE KEY-----\n")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary is not installed")
def test_openssl_verifies_the_chain(bundle: Bundle, tmp_path: Path) -> None:
    server, _ = certs(bundle)
    (tmp_path / "ca.pem").write_text(bundle.trusted_certificates)
    (tmp_path / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    # -x509_strict: RFC 5280's rules (key identifiers, critical basicConstraints on the CA, ...);
    # -purpose sslserver: the server certificate is fit for a TLS server.
    for purpose in ("sslserver", "sslclient"):
        proc = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-purpose", purpose, "-CAfile", str(tmp_path / "ca.pem"),
             str(tmp_path / "server.pem")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), proc.stdout + proc.stderr


def test_a_tls_client_trusting_the_ca_completes_a_handshake_with_the_server(
    bundle: Bundle, tmp_path: Path
) -> None:
    """Python's ssl (OpenSSL's TLS stack) checks the chain and the host name the way EMR's clients do."""
    (tmp_path / "chain.pem").write_text(bundle.certificate_chain)
    (tmp_path / "key.pem").write_text(bundle.private_key)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    client_context = ssl.create_default_context(cadata=bundle.trusted_certificates)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_server, from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(to_server, from_server, server_side=True)
    client = client_context.wrap_bio(to_client, from_client, server_hostname="query.analytics.mlhpc.internal")
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if all(done.values()):
            break
    assert all(done.values()), done
    peer = client.getpeercert()
    assert peer and ("DNS", "query.analytics.mlhpc.internal") in peer["subjectAltName"]


def test_emr_zip_holds_the_three_files_emr_reads(bundle: Bundle) -> None:
    with zipfile.ZipFile(io.BytesIO(bundle.emr_zip())) as archive:
        assert sorted(archive.namelist()) == [
            "certificateChain.pem",
            "privateKey.pem",
            "trustedCertificates.pem",
        ]
        assert archive.read("privateKey.pem").decode() == bundle.private_key


def test_bad_arguments_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="needs at least one DNS name"):
        make_bundle(())
    with pytest.raises(ValueError, match="at least one day, not 0"):
        make_bundle(NAMES, days=0)


def test_a_first_name_too_long_for_a_common_name_stays_in_the_alt_names_only() -> None:
    long_name = "a" * 60 + ".analytics.mlhpc.internal"  # 85 characters; RFC 5280 caps a CN at 64
    server, _ = certs(make_bundle((long_name,), days=1))
    assert server.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME) == []
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [long_name]


class FakeS3:
    """Records put/delete calls the way the handler makes them."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def put_object(self, **kwargs: Any) -> None:
        self.objects[kwargs["Key"]] = kwargs

    def delete_object(self, *, Bucket: str, Key: str) -> None:  # noqa: N803 - boto3's argument names
        self.objects.pop(Key, None)


def event(kind: str) -> dict[str, Any]:
    return {
        "RequestType": kind, "ResponseURL": "https://cfn.example/response", "StackId": "stack", "RequestId": "r1",
        "LogicalResourceId": "Bundle", "PhysicalResourceId": "s3://artifacts/tls/emr-tls-bundle.zip",
        "ResourceProperties": {
            "Bucket": "artifacts", "BundleKey": "tls/emr-tls-bundle.zip", "CaKey": "tls/emr-tls-ca.pem",
            "KmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/k", "DnsNames": list(NAMES), "ValidityDays": "30",
        },
    }  # fmt: skip


def test_handler_writes_encrypted_objects_and_answers_cloudformation(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[dict[str, Any]] = []
    monkeypatch.setattr(
        handler_module, "_respond", lambda ev, status, **kw: answers.append({"Status": status, **kw})
    )
    s3 = FakeS3()
    handler_module.handler(event("Create"), None, s3=s3)
    assert answers[-1]["Status"] == "SUCCESS", answers
    assert answers[-1]["data"] == {
        "BundleUri": "s3://artifacts/tls/emr-tls-bundle.zip",
        "CaUri": "s3://artifacts/tls/emr-tls-ca.pem",
    }
    assert set(s3.objects) == {"tls/emr-tls-bundle.zip", "tls/emr-tls-ca.pem"}
    assert all(o["ServerSideEncryption"] == "aws:kms" for o in s3.objects.values())
    handler_module.handler(event("Delete"), None, s3=s3)
    assert s3.objects == {} and answers[-1]["Status"] == "SUCCESS"


def test_handler_reports_failures_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bytes] = []

    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def read(self) -> bytes:
            return b""

    def urlopen(request: Any, timeout: int) -> Response:
        assert request.get_method() == "PUT" and request.full_url == "https://cfn.example/response"
        sent.append(request.data)
        return Response()

    monkeypatch.setattr(handler_module.urllib.request, "urlopen", urlopen)
    bad = event("Create")
    bad["ResourceProperties"]["DnsNames"] = []
    handler_module.handler(bad, None, s3=FakeS3())
    body = json.loads(sent[-1])
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("ValueError: a server certificate needs at least one DNS name")
