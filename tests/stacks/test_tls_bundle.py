"""The stdlib-only self-signed TLS generator, checked by independent implementations: the
`cryptography` package and the openssl binary parse and verify what it writes."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from stacks.assets.tls_bundle import handler as handler_module
from stacks.assets.tls_bundle.selfsigned import MARK, Bundle, generate_rsa, make_bundle, sign

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
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_names_usages_and_the_self_signed_mark(bundle: Bundle) -> None:
    server, ca = certs(bundle)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert tuple(san.get_values_for_type(x509.DNSName)) == NAMES
    usages = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH}
    for cert in (server, ca):
        unit = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        assert unit == MARK == "SELF-SIGNED - replace for production"
    lifetime = server.not_valid_after_utc - server.not_valid_before_utc
    assert lifetime.days == 30


def test_private_key_is_pkcs8_and_matches_the_certificate(bundle: Bundle) -> None:
    key = serialization.load_pem_private_key(bundle.private_key.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    server, _ = certs(bundle)
    assert key.public_key().public_numbers() == server.public_key().public_numbers()
    assert bundle.private_key.startswith("-----BEGIN PRIVATE KEY-----\n")


def test_signatures_match_an_independent_rsa_implementation() -> None:
    key = generate_rsa(1024)  # small for speed; the padding and encoding do not depend on size
    public = rsa.RSAPublicNumbers(key.e, key.n).public_key()
    public.verify(sign(key, b"message"), b"message", padding.PKCS1v15(), hashes.SHA256())
    assert key.n.bit_length() == 1024 and key.p * key.q == key.n


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary is not installed")
def test_openssl_verifies_the_chain(bundle: Bundle, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(bundle.trusted_certificates)
    (tmp_path / "chain.pem").write_text(bundle.certificate_chain)
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "chain.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), proc.stdout + proc.stderr


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
    with pytest.raises(ValueError, match="use an even size of at least 1024"):
        generate_rsa(512)


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
        handler_module, "make_bundle", lambda names, **kw: make_bundle(names, bits=1024, **kw)
    )
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
