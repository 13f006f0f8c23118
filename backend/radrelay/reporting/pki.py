"""The platform's own certificate authority, and the keys that radiologists sign reports with.

``CertificateAuthority.open_or_create(directory, passphrase)`` creates, on first use, a CA key
and its self-signed certificate; ``issue_signer(user_id, name)`` gives each radiologist a key and
a certificate from it, kept and reused. Files under ``directory`` (``Settings.ca_dir``, i.e.
``<data_dir>/ca``)::

    ca.pem               the CA's key (PKCS#8, encrypted with the passphrase) and certificate
    ca.crt               the CA certificate alone: what a verifier trusts (pdfsig, Acrobat)
    signers/<user>.pem   a radiologist's key (encrypted the same way) and certificate

Key files are created 0600 in a 0700 directory. A key and its certificate live in one file, so
that publishing them is one atomic step: two processes starting at once on a fresh data dir
each make a candidate and the first hard link wins (as ``Settings.resolved_secret_key``); the
loser reads the winner's. The keys are encrypted with PKCS#8 PBES2 (AES-256-CBC, PBKDF2 with
the 2,048 rounds ``cryptography`` uses): that protects a copied file only if the passphrase is a
long random secret kept elsewhere, hence the minimum length.

All cryptography is ``cryptography``'s: keys, certificates, encryption. pyHanko only wraps the
result into its ``Signer`` for ``signing.sign``.

Production hook: anything that implements ``SignerProvider`` can replace this CA. A hospital
group with a licensed CA (in China one licensed under the Electronic Signature Law, whose keys
sit in an HSM or a USB key under the radiologist's sole control) returns pyHanko's
``pyhanko.sign.pkcs11.PKCS11Signer`` for the user's token from ``signer()``, or a remote-signing
``Signer`` subclass that calls the CA's signing service; ``trust_roots()`` then returns the
licensed CA's root. ``signing.sign`` and ``signing.verify`` need nothing else.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

CA_BUNDLE = "ca.pem"
CA_CERT = "ca.crt"
SIGNERS_DIR = "signers"
CA_NAME = "RadRelay Platform CA"
MIN_PASSPHRASE = 16

CA_VALIDITY = timedelta(days=25 * 365)
SIGNER_VALIDITY = timedelta(days=5 * 365)
# A signer certificate this close to its end is replaced before it is used again: a signature
# made with it would stop verifying as trusted soon after (B-B carries no timestamp).
RENEW_BEFORE = timedelta(days=60)
# Clocks of the machines that check a fresh signature may be a little behind ours.
BACKDATE = timedelta(minutes=10)

# id-kp-documentSigning (RFC 9336). Email protection is there too: NSS (pdfsig, Firefox) checks
# a PDF signer as an e-mail signer and refuses one whose extended key usage lacks it.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


class PkiError(Exception):
    """The CA cannot be opened or used (wrong passphrase, damaged files)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A signing key, its certificate and the certificates above it (up to the root)."""

    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...]

    def pyhanko_signer(self) -> Signer:
        der = serialization.Encoding.DER
        key = self.private_key.private_bytes(
            der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return SimpleSigner(
            signing_cert=asn1_x509.Certificate.load(self.certificate.public_bytes(der)),
            signing_key=asn1_keys.PrivateKeyInfo.load(key),
            cert_registry=SimpleCertificateStore.from_certs(
                [asn1_x509.Certificate.load(c.public_bytes(der)) for c in self.chain]
            ),
        )


class SignerProvider(Protocol):
    """Where signatures come from: the platform CA here, a PKCS#11 token or an external CA in
    production (see the module docstring)."""

    def signer(self, user_id: int, common_name: str, *, title: str = "") -> Signer:
        """The pyHanko signer of radiologist ``user_id`` (``common_name`` is their printed
        name, ``title`` their qualification)."""
        ...

    def trust_roots(self) -> Sequence[x509.Certificate]:
        """The certificates a verifier must trust for these signers' signatures."""
        ...


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _bundle(key: PrivateKey, certificate: x509.Certificate, passphrase: bytes) -> bytes:
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    return encrypted + certificate.public_bytes(serialization.Encoding.PEM)


def _read_bundle(path: Path, passphrase: bytes) -> tuple[PrivateKey, x509.Certificate]:
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, passphrase)
        certificate = x509.load_pem_x509_certificate(
            data[data.index(b"-----BEGIN CERTIFICATE-----") :]
        )
    except (ValueError, TypeError) as exc:
        raise PkiError(
            f"{path} cannot be read with this passphrase (RADRELAY_CA_PASSPHRASE), or is damaged"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{path} holds a {type(key).__name__}, not an EC or RSA key")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise PkiError(f"{path}: the key does not match the certificate")
    return key, certificate


def _publish(path: Path, data: bytes, mode: int, *, replace: bool = False) -> None:
    """Write ``data`` at ``path`` in one step. Without ``replace`` the first writer wins and
    later ones leave the file as it is; with it the last writer wins."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    # Created with its final mode: a key is never readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def _passphrase(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) < MIN_PASSPHRASE:
        raise PkiError(
            f"the CA passphrase must have at least {MIN_PASSPHRASE} characters: the key files "
            "use PBKDF2 with few rounds, so only a long random passphrase protects them"
        )
    return raw


def load_ca_certificate(directory: Path) -> x509.Certificate:
    """The CA certificate alone (no passphrase needed): what ``verify`` trusts by default."""
    return x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())


class CertificateAuthority:
    """The platform CA, opened with ``open_or_create``. Implements ``SignerProvider``."""

    def __init__(
        self, directory: Path, passphrase: bytes, key: PrivateKey, certificate: x509.Certificate
    ) -> None:
        self.directory = directory
        self._passphrase = passphrase
        self._key = key
        self.certificate = certificate
        self._key_type: KeyType = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ec"
        self._signers: dict[tuple[int, x509.Name], Credentials] = {}

    @classmethod
    def open_or_create(
        cls,
        directory: Path,
        passphrase: str | bytes,
        *,
        name: str = CA_NAME,
        organization: str = "RadRelay",
        key_type: KeyType = "ec",
    ) -> CertificateAuthority:
        """The CA in ``directory``, created there first if there is none (P-256 by default,
        ``key_type="rsa"`` for RSA-3072). An existing CA is opened as it is: ``name`` and
        ``key_type`` only apply to a new one. Raises ``PkiError`` for a wrong passphrase."""
        secret = _passphrase(passphrase)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        bundle = directory / CA_BUNDLE
        if not bundle.exists():
            key = _new_key(key_type)
            subject = x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                ]
            )
            now = datetime.now(UTC)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - BACKDATE)
                .not_valid_after(now + CA_VALIDITY)
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
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            _publish(bundle, _bundle(key, certificate, secret), 0o600)
        key, certificate = _read_bundle(bundle, secret)
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        cert_file = directory / CA_CERT
        if not cert_file.exists() or cert_file.read_bytes() != pem:
            _publish(cert_file, pem, 0o644, replace=True)
        (directory / SIGNERS_DIR).mkdir(mode=0o700, exist_ok=True)
        return cls(directory, secret, key, certificate)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def trust_roots(self) -> Sequence[x509.Certificate]:
        return (self.certificate,)

    def _subject(self, user_id: int, common_name: str, title: str, organization: str) -> x509.Name:
        attributes = [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.USER_ID, f"radrelay:{user_id}"),
        ]
        if title:
            attributes.append(x509.NameAttribute(NameOID.TITLE, title))
        if not organization:
            ours = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
            organization = str(ours[0].value) if ours else ""
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        return x509.Name(attributes)

    def _usable(self, certificate: x509.Certificate, subject: x509.Name) -> bool:
        """Still good to sign with: ours, for this person as named now, not near its end."""
        if certificate.subject != subject or certificate.issuer != self.certificate.subject:
            return False
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError):
            return False  # issued by an earlier CA of the same name
        return certificate.not_valid_after_utc - RENEW_BEFORE > datetime.now(UTC)

    def issue_signer(
        self,
        user_id: int,
        common_name: str,
        *,
        title: str = "",
        organization: str = "",
        email: str = "",
    ) -> Credentials:
        """Radiologist ``user_id``'s key and certificate: the stored ones while they still fit
        (same name and title, issued by this CA, not about to expire), else new ones, which
        replace them. ``common_name`` is the printed name, ``title`` the qualification."""
        subject = self._subject(user_id, common_name, title, organization)
        cached = self._signers.get((user_id, subject))
        if cached is not None and self._usable(cached.certificate, subject):
            return cached
        path = self.directory / SIGNERS_DIR / f"{int(user_id)}.pem"
        if path.exists():
            key, certificate = _read_bundle(path, self._passphrase)
            if not self._usable(certificate, subject):
                key, certificate = self._issue(subject, email)
                _publish(path, _bundle(key, certificate, self._passphrase), 0o600, replace=True)
        else:
            key, certificate = self._issue(subject, email)
            _publish(path, _bundle(key, certificate, self._passphrase), 0o600)
            key, certificate = _read_bundle(path, self._passphrase)  # another process's, maybe
        credentials = Credentials(certificate, key, (self.certificate,))
        self._signers[(user_id, subject)] = credentials
        return credentials

    def _issue(self, subject: x509.Name, email: str) -> tuple[PrivateKey, x509.Certificate]:
        key = _new_key(self._key_type)
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + SIGNER_VALIDITY, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,  # nonRepudiation: what pyHanko requires by default
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if email:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False
            )
        return key, builder.sign(self._key, hashes.SHA256())

    def signer(self, user_id: int, common_name: str, *, title: str = "") -> Signer:
        return self.issue_signer(user_id, common_name, title=title).pyhanko_signer()
