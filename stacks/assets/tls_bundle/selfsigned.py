"""Generate a self-signed CA and a server certificate for EMR with the ``cryptography`` package.

The Lambda function runs this with ``cryptography`` from its layer (built for the runtime by
`make setup`: ``stacks.lambda_deps``). Keys are RSA 2048 from OpenSSL; the server key is
written as unencrypted PKCS #8 PEM because EMR's PEM certificate provider reads it that way.

Everything it makes is marked SELF-SIGNED in the subject: it lets the default deployment
encrypt EMR traffic without a PKI, and it is meant to be replaced by a real bundle.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MARK = "SELF-SIGNED - replace for production"
KEY_BITS = 2048
# RFC 5280 (ub-common-name): a longer common name is no valid certificate, and cryptography refuses it.
COMMON_NAME_MAX = 64


def _name(common_name: str, organization: str) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, MARK),
    ]
    # A server's names are in its subjectAltName (what TLS clients check); the CN is only a label.
    if len(common_name) <= COMMON_NAME_MAX:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def certificate(
    *,
    subject_key: rsa.RSAPrivateKey,
    subject: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    dns_names: tuple[str, ...] = (),
    ca: bool = False,
    days: int = 365,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Return an X.509 v3 certificate for ``subject_key`` signed (SHA-256) by ``issuer_key``."""
    start = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0) - dt.timedelta(hours=1)  # clock skew
    public = subject_key.public_key()
    # CA: keyCertSign, cRLSign. Server: digitalSignature, keyEncipherment.
    key_usage = x509.KeyUsage(
        digital_signature=not ca, key_encipherment=not ca, key_cert_sign=ca, crl_sign=ca,
        content_commitment=False, data_encipherment=False, key_agreement=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        # A CA that may sign end-entity certificates only (path length 0); a server that is no CA.
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if not ca:
        # serverAuth and clientAuth: EMR nodes use the same certificate both ways.
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if dns_names:
        san = x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class Bundle:
    """The PEM files of an EMR in-transit encryption bundle, plus the CA for clients."""

    private_key: str
    certificate_chain: str
    trusted_certificates: str

    def emr_zip(self) -> bytes:
        """Return the zip EMR's PEM certificate provider reads (file names fixed by EMR)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("privateKey.pem", self.private_key)
            archive.writestr("certificateChain.pem", self.certificate_chain)
            archive.writestr("trustedCertificates.pem", self.trusted_certificates)
        return buffer.getvalue()


def make_bundle(dns_names: tuple[str, ...], *, organization: str = "mlhpc", days: int = 365) -> Bundle:
    """Create a CA and a server certificate for ``dns_names``; return EMR's three PEM files."""
    if not dns_names:
        raise ValueError("a server certificate needs at least one DNS name, e.g. '*.ec2.internal'")
    if days < 1:
        raise ValueError(f"a certificate must be valid for at least one day, not {days}; e.g. 365")
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    ca_name = _name(f"{organization} EMR CA", organization)
    ca_cert = certificate(
        subject_key=ca_key, subject=ca_name, issuer_key=ca_key, issuer=ca_name, ca=True, days=days
    )
    server_cert = certificate(
        subject_key=server_key, subject=_name(dns_names[0], organization), issuer_key=ca_key,
        issuer=ca_name, dns_names=dns_names, days=days,
    )  # fmt: skip
    private_key = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return Bundle(
        private_key=private_key,
        certificate_chain=_pem(server_cert) + _pem(ca_cert),
        trusted_certificates=_pem(ca_cert),
    )
