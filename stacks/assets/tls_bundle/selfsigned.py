"""Generate a self-signed CA and a server certificate with the Python standard library alone.

The Lambda runtime has no ``cryptography`` and no ``openssl`` binary, and bundling native
wheels would need Docker at synthesis. X.509 needs only RSA (``pow``), SHA-256 (``hashlib``)
and DER, so this module writes them directly: RSA keys from ``secrets`` with Miller-Rabin
primes (RFC 8017), certificates per RFC 5280, keys as PKCS #8 PEM.

Everything it makes is marked SELF-SIGNED in the subject: it lets the default deployment
encrypt EMR traffic without a PKI, and it is meant to be replaced by a real bundle.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import secrets
import zipfile
from dataclasses import dataclass

MARK = "SELF-SIGNED - replace for production"
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


# --- RSA --------------------------------------------------------------------------------------


def _probably_prime(n: int, rounds: int = 40) -> bool:
    """Miller-Rabin with random bases; error below 4**-rounds."""
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = 2 + secrets.randbelow(n - 3)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, e: int) -> int:
    while True:
        # Top two bits set: the product of two such primes has exactly 2*bits bits.
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if (candidate - 1) % e and _probably_prime(candidate):
            return candidate


@dataclass(frozen=True)
class RsaKey:
    """An RSA private key (n, e, d and the CRT parameters' sources p, q)."""

    n: int
    e: int
    d: int
    p: int
    q: int

    @property
    def size_bytes(self) -> int:
        """Return the modulus length in bytes (the signature length)."""
        return (self.n.bit_length() + 7) // 8


def generate_rsa(bits: int = 2048, e: int = 65537) -> RsaKey:
    """Generate an RSA key of exactly ``bits`` bits with public exponent ``e``."""
    if bits < 1024 or bits % 2:
        raise ValueError(
            f"RSA key size {bits} is not supported; use an even size of at least 1024 (2048 default)"
        )
    while True:
        p, q = _prime(bits // 2, e), _prime(bits // 2, e)
        if p != q:
            break
    lam = (p - 1) * (q - 1) // _gcd(p - 1, q - 1)
    return RsaKey(n=p * q, e=e, d=pow(e, -1, lam), p=max(p, q), q=min(p, q))


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


# --- DER --------------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _set(*items: bytes) -> bytes:
    return _tlv(0x31, b"".join(items))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        rest, chunk = part >> 7, [part & 0x7F]
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _time(moment: dt.datetime) -> bytes:
    # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    if moment.year < 2050:
        return _tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


_NULL = b"\x05\x00"
_RSA = _oid("1.2.840.113549.1.1.1")
_SHA256_RSA = _seq(_oid("1.2.840.113549.1.1.11"), _NULL)
_SHA256 = _seq(_oid("2.16.840.1.101.3.4.2.1"), _NULL)


def _name(common_name: str, organization: str) -> bytes:
    def rdn(oid: str, text: str) -> bytes:
        return _set(_seq(_oid(oid), _tlv(0x0C, text.encode("utf-8"))))

    return _seq(rdn("2.5.4.10", organization), rdn("2.5.4.11", MARK), rdn("2.5.4.3", common_name))


def _public_key_info(key: RsaKey) -> bytes:
    return _seq(_seq(_RSA, _NULL), _tlv(0x03, b"\x00" + _seq(_int(key.n), _int(key.e))))


def _key_id(key: RsaKey) -> bytes:
    # RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (an identifier, not a security use).
    return hashlib.sha1(_seq(_int(key.n), _int(key.e)), usedforsecurity=False).digest()


def _extension(oid: str, value: bytes, *, critical: bool = False) -> bytes:
    return _seq(_oid(oid), _tlv(0x01, b"\xff") if critical else b"", _tlv(0x04, value))


def _key_usage(bits: tuple[int, ...]) -> bytes:
    value = 0
    for bit in bits:
        value |= 0x80 >> bit
    unused = (value & -value).bit_length() - 1 if value else 0
    return _tlv(0x03, bytes([unused, value]))


def sign(key: RsaKey, message: bytes) -> bytes:
    """Return the RSASSA-PKCS1-v1_5 SHA-256 signature of ``message`` (RFC 8017 8.2)."""
    info = _seq(_SHA256, _tlv(0x04, hashlib.sha256(message).digest()))
    padded = b"\x00\x01" + b"\xff" * (key.size_bytes - len(info) - 3) + b"\x00" + info
    return pow(int.from_bytes(padded, "big"), key.d, key.n).to_bytes(key.size_bytes, "big")


def certificate(
    *,
    subject_key: RsaKey,
    subject: str,
    issuer_key: RsaKey,
    issuer: str,
    organization: str,
    dns_names: tuple[str, ...] = (),
    ca: bool = False,
    days: int = 365,
    now: dt.datetime | None = None,
) -> bytes:
    """Return a DER X.509 v3 certificate for ``subject_key`` signed by ``issuer_key``."""
    start = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0) - dt.timedelta(hours=1)
    end = start + dt.timedelta(days=days)
    extensions = [
        _extension("2.5.29.19", _seq(_tlv(0x01, b"\xff")) if ca else _seq(), critical=True),
        # CA: keyCertSign, cRLSign. Server: digitalSignature, keyEncipherment.
        _extension("2.5.29.15", _key_usage((5, 6) if ca else (0, 2)), critical=True),
        _extension("2.5.29.14", _tlv(0x04, _key_id(subject_key))),
        _extension("2.5.29.35", _seq(_tlv(0x80, _key_id(issuer_key)))),
    ]
    if not ca:
        # serverAuth and clientAuth: EMR nodes use the same certificate both ways.
        usages = _seq(_oid("1.3.6.1.5.5.7.3.1"), _oid("1.3.6.1.5.5.7.3.2"))
        extensions.append(_extension("2.5.29.37", usages))
    if dns_names:
        san = _seq(*[_tlv(0x82, name.encode("ascii")) for name in dns_names])
        extensions.append(_extension("2.5.29.17", san, critical=False))
    tbs = _seq(
        _tlv(0xA0, _int(2)),
        _int(secrets.randbits(126) | (1 << 126)),
        _SHA256_RSA,
        _name(issuer, organization),
        _seq(_time(start), _time(end)),
        _name(subject, organization),
        _public_key_info(subject_key),
        _tlv(0xA3, _seq(*extensions)),
    )
    return _seq(tbs, _SHA256_RSA, _tlv(0x03, b"\x00" + sign(issuer_key, tbs)))


def private_key_der(key: RsaKey) -> bytes:
    """Return the key as PKCS #8 PrivateKeyInfo DER (RFC 5208) around an RFC 8017 RSAPrivateKey."""
    pkcs1 = _seq(
        _int(0), _int(key.n), _int(key.e), _int(key.d), _int(key.p), _int(key.q),
        _int(key.d % (key.p - 1)), _int(key.d % (key.q - 1)), _int(pow(key.q, -1, key.p)),
    )  # fmt: skip
    return _seq(_int(0), _seq(_RSA, _NULL), _tlv(0x04, pkcs1))


def pem(label: str, der: bytes) -> str:
    """Return DER as PEM text with 64-column lines."""
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


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


def make_bundle(
    dns_names: tuple[str, ...], *, organization: str = "mlhpc", days: int = 365, bits: int = 2048
) -> Bundle:
    """Create a CA and a server certificate for ``dns_names``; return EMR's three PEM files."""
    if not dns_names:
        raise ValueError("a server certificate needs at least one DNS name, e.g. '*.ec2.internal'")
    ca_key, server_key = generate_rsa(bits), generate_rsa(bits)
    ca_name = f"{organization} EMR CA ({MARK})"
    ca_cert = certificate(
        subject_key=ca_key, subject=ca_name, issuer_key=ca_key, issuer=ca_name,
        organization=organization, ca=True, days=days,
    )  # fmt: skip
    server_cert = certificate(
        subject_key=server_key, subject=dns_names[0], issuer_key=ca_key, issuer=ca_name,
        organization=organization, dns_names=dns_names, days=days,
    )  # fmt: skip
    ca_pem = pem("CERTIFICATE", ca_cert)
    return Bundle(
        private_key=pem("PRIVATE KEY", private_key_der(server_key)),
        certificate_chain=pem("CERTIFICATE", server_cert) + ca_pem,
        trusted_certificates=ca_pem,
    )
