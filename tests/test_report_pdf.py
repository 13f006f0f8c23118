"""Report PDFs: the layout (read back with poppler's pdftotext), the platform CA and its keys,
PAdES signing and verification with pyHanko, and the same signatures as poppler's pdfsig and
``radrelay reports verify`` see them.

No server: these are pure modules. The documents come from ``reporting.sample`` (a chest CT of
张伟, bilingual, four key images, two signatures), with its fields changed per test.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fontTools import ttLib
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import DummyTimeStamper

from radrelay.config import Settings
from radrelay.reporting import signing
from radrelay.reporting.document import Language, Party, Patient, ReportStatus, Section, Text
from radrelay.reporting.pdf import COSIGN_STAMP_BOX, EmbeddedFont, person_name, render
from radrelay.reporting.pki import (
    CA_BUNDLE,
    CA_CERT,
    DOCUMENT_SIGNING,
    SIGNERS_DIR,
    CertificateAuthority,
    PkiError,
    load_ca_certificate,
)
from radrelay.reporting.sample import ct_jpeg, sample_document

BIN = Path(sys.executable).parent
PASSPHRASE = "correct horse battery staple"
WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def pdftotext(pdf: bytes, tmp_path: Path, *, layout: bool = False) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(path), "-"]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    assert "Missing language pack" not in done.stderr, done.stderr  # poppler-data is needed
    return done.stdout


def pdfinfo_pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "info.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(
        next(line.split()[-1] for line in out.stdout.splitlines() if line.startswith("Pages:"))
    )


def flatten(text: str) -> str:
    """Text with runs of white space as one space: pdftotext breaks lines where the PDF does."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.open_or_create(tmp_path_factory.mktemp("pki") / "ca", PASSPHRASE)


@pytest.fixture(scope="module")
def report() -> bytes:
    return render(sample_document())


@pytest.fixture(scope="module")
def signed(ca: CertificateAuthority, report: bytes) -> bytes:
    """The sample report signed by its author, then by the co-signer."""
    author = ca.signer(7, "李娜 Li Na", title="住院医师 Resident radiologist")
    cosigner = ca.signer(8, "王建国 Wang Jianguo", title="主任医师 Chief radiologist")
    once = signing.sign(
        report,
        author,
        reason="author",
        location="云影远程影像诊断中心",
        name="李娜 Li Na",
        field=signing.signature_field(1, "author"),
    )
    return signing.sign(
        once,
        cosigner,
        reason="cosigner",
        location="云影远程影像诊断中心",
        name="王建国 Wang Jianguo",
        field=signing.signature_field(1, "cosigner"),
    )


STAMP = (
    "正式报告 FINAL REPORT\n审核医师 Co-signed by 王建国 Wang Jianguo, 主任医师 Chief radiologist, "
    "2025-03-03 15:05 +08:00"
)


@pytest.fixture(scope="module")
def stamped(ca: CertificateAuthority) -> bytes:
    """A preliminary signed by its author, then co-signed with a visible stamp on page 1."""
    preliminary = render(sample_document(status=ReportStatus.preliminary, cosigned=False))
    once = signing.sign(
        preliminary,
        ca.signer(7, "李娜 Li Na", title="住院医师 Resident radiologist"),
        reason="author",
        location="云影远程影像诊断中心",
        name="李娜 Li Na",
        field=signing.signature_field(1, "author"),
    )
    return signing.sign(
        once,
        ca.signer(8, "王建国 Wang Jianguo", title="主任医师 Chief radiologist"),
        reason="cosigner",
        location="云影远程影像诊断中心",
        name="王建国 Wang Jianguo",
        field=signing.signature_field(2, "cosigner"),
        stamp=STAMP,
        box=COSIGN_STAMP_BOX,
    )


# --- layout ---------------------------------------------------------------------------------


class TestRender:
    def test_bilingual_report_reads_back(self, report: bytes, tmp_path: Path) -> None:
        text = flatten(pdftotext(report, tmp_path))
        assert report.startswith(b"%PDF-")
        # The patient by two identifiers: the Chinese name (with the pinyin) and the ID with
        # its issuer.
        assert "张伟 (Zhang, Wei)" in text
        assert "QSX-000123" in text and "QSX)" in text
        assert "1968-04-12 (56岁 56 y)" in text
        assert "男 Male" in text
        # Letterheads, title, status.
        assert "青石县人民医院" in text and "云影远程影像诊断中心" in text
        assert "影像诊断报告 Imaging Report" in text
        assert "正式报告 FINAL" in text
        # The exam, the referring physician and the clinical question.
        assert "A20250303-0042" in text and "2025-03-03 14:05" in text
        assert "陈明 Chen, Ming" in text
        assert "咳嗽两周，排除肺部占位。" in text
        # Bilingual section headings, the entries, the impression.
        assert "检查所见 Findings" in text and "诊断意见 Impression" in text
        assert "结节大小 Nodule size 8 mm" in text
        assert "右肺上叶实性小结节（8 mm），Lung-RADS 3" in text
        # Key image captions, signatures with qualification, meaning and Beijing time.
        for n in range(41, 45):
            assert f"Series 3, image {n}" in text
        assert (
            "报告医师 Author 李娜 Li Na 住院医师 Resident radiologist 2025-03-03 14:32 +08:00"
            in text
        )
        assert "审核医师 Co-signer 王建国 Wang Jianguo" in text and "15:05 +08:00" in text
        # Footer of each page: report id, version and n / N.
        assert "报告 Report 1024 | 版本 version 1" in text
        assert "1 / 2" in text and "2 / 2" in text

    def test_two_pages_with_four_key_images(self, report: bytes, tmp_path: Path) -> None:
        assert pdfinfo_pages(report, tmp_path) == 2
        (tmp_path / "images.pdf").write_bytes(report)
        listing = subprocess.run(
            ["pdfimages", "-list", str(tmp_path / "images.pdf")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[2:]
        # The JPEGs go in as they are (DCT), not decoded and re-encoded.
        assert [line.split()[8] for line in listing] == ["jpeg"] * 4
        assert all(line.split()[3:5] == ["512", "512"] for line in listing)

    def test_later_pages_name_the_patient(self, report: bytes, tmp_path: Path) -> None:
        pages = pdftotext(report, tmp_path).split("\f")
        assert "张伟 Zhang, Wei | 患者编号 Patient ID QSX-000123" in flatten(pages[1])

    def test_chinese_only(self, tmp_path: Path) -> None:
        text = flatten(pdftotext(render(sample_document(language=Language.zh)), tmp_path))
        assert "检查所见" in text and "Findings" not in text
        assert "影像诊断报告" in text and "Imaging Report" not in text
        assert "张伟 (Zhang, Wei)" in text and "56岁" in text

    def test_english_only(self, tmp_path: Path) -> None:
        text = flatten(pdftotext(render(sample_document(language=Language.en)), tmp_path))
        assert "Findings" in text and "检查所见" not in text
        assert "Zhang, Wei (张伟)" in text and "56 y" in text
        assert "Report 1024 | version 1 | FINAL" in text

    def test_amended_preliminary_critical_addendum(self, tmp_path: Path) -> None:
        amended = render(
            sample_document(status=ReportStatus.amended, version=2, critical=True, addendum=True)
        )
        text = flatten(pdftotext(amended, tmp_path))
        assert "修正报告 AMENDED" in text
        assert "本报告修正第 1 版 Supersedes version 1" in text
        assert "结节大小测量更正 Nodule size corrected" in text
        assert "危急值 CRITICAL FINDING" in text
        assert "补充报告 Addenda" in text and "测量复核 Measurement review" in text
        assert "补充报告医师 Addendum author 王建国 Wang Jianguo" in text
        assert "16:40 +08:00" in text
        preliminary = render(sample_document(status=ReportStatus.preliminary, cosigned=False))
        text = flatten(pdftotext(preliminary, tmp_path))
        assert "初步报告 PRELIMINARY" in text and "尚未经审核医师最终签署" in text
        assert "Co-signer" not in text

    def test_free_text_is_not_markup(self, tmp_path: Path) -> None:
        doc = sample_document(key_images=0)
        odd = Section(
            "findings", Text("Findings", "检查所见"), text="结节 < 5 mm & <b>不是标签</b>"
        )
        pdf = render(replace(doc, sections=(odd,)))
        assert "结节 < 5 mm & <b>不是标签</b>" in pdftotext(pdf, tmp_path)

    def test_logos_and_a_short_report(self, tmp_path: Path) -> None:
        from PIL import Image

        png = io.BytesIO()
        Image.new("RGB", (64, 64), (31, 78, 121)).save(png, "PNG")
        doc = sample_document(key_images=0, cosigned=False)
        doc = replace(
            doc,
            sections=tuple(s for s in doc.sections if s.key in ("findings", "impression")),
            center=replace(doc.center, logo_png=png.getvalue()),
            hospital=replace(doc.hospital, logo_png=png.getvalue()),
            patient=Patient(name="李^雷", patient_id="7", birth_date="", sex=""),
        )
        pdf = render(doc)
        text = flatten(pdftotext(pdf, tmp_path))
        assert "李雷" in text and "1 / 1" in text
        assert pdfinfo_pages(pdf, tmp_path) == 1

    @pytest.mark.skipif(not WQY.exists(), reason="fonts-wqy-microhei (make system-deps)")
    def test_embedded_font(self, tmp_path: Path) -> None:
        pdf = render(sample_document(), font=EmbeddedFont(WQY))
        (tmp_path / "font.pdf").write_bytes(pdf)
        fonts = subprocess.run(
            ["pdffonts", str(tmp_path / "font.pdf")], capture_output=True, text=True, check=True
        ).stdout
        wqy = [line for line in fonts.splitlines() if "WenQuanYi" in line]
        assert wqy and all(" yes yes yes " in line for line in wqy)  # embedded, subset, ToUnicode
        assert "张伟 (Zhang, Wei)" in flatten(pdftotext(pdf, tmp_path))


@pytest.mark.parametrize(
    ("pn", "expected"),
    [
        ("Zhang^Wei=张^伟", ("张伟", "Zhang, Wei")),
        ("张^伟", ("张伟", "")),
        ("ZHANG^WEI", ("", "ZHANG, WEI")),
        ("Smith^John^Q^Dr^Jr", ("", "Smith, Dr John Q, Jr")),
        ("=欧阳^娜娜", ("欧阳娜娜", "")),
        ("Wang=王", ("王", "Wang")),
        ("", ("", "")),
    ],
)
def test_person_name(pn: str, expected: tuple[str, str]) -> None:
    assert person_name(pn) == expected


# --- the CA and the signing keys ------------------------------------------------------------


def _open(directory: str, queue: multiprocessing.Queue, barrier: multiprocessing.Barrier) -> None:  # type: ignore[type-arg]
    barrier.wait()
    ca = CertificateAuthority.open_or_create(Path(directory), PASSPHRASE)
    credentials = ca.issue_signer(42, "张伟 Zhang Wei")
    queue.put(
        (
            ca.certificate.fingerprint(hashes.SHA256()).hex(),
            credentials.certificate.fingerprint(hashes.SHA256()).hex(),
        )
    )


class TestCertificateAuthority:
    def test_created_once_then_reused(self, tmp_path: Path) -> None:
        first = CertificateAuthority.open_or_create(tmp_path / "ca", PASSPHRASE)
        again = CertificateAuthority.open_or_create(tmp_path / "ca", PASSPHRASE.encode())
        assert again.certificate == first.certificate
        assert load_ca_certificate(tmp_path / "ca") == first.certificate
        cert = first.certificate
        assert cert.subject == cert.issuer
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and not usage.digital_signature

    def test_key_files_encrypted_and_private(self, tmp_path: Path) -> None:
        ca = CertificateAuthority.open_or_create(tmp_path / "ca", PASSPHRASE)
        ca.issue_signer(7, "李娜 Li Na")
        keys = [tmp_path / "ca" / CA_BUNDLE, tmp_path / "ca" / SIGNERS_DIR / "7.pem"]
        for path in keys:
            assert path.stat().st_mode & 0o777 == 0o600
            data = path.read_bytes()
            assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
            assert b"BEGIN PRIVATE KEY" not in data
            with pytest.raises(TypeError):  # encrypted: a password is required
                serialization.load_pem_private_key(data, None)
            with pytest.raises(ValueError):
                serialization.load_pem_private_key(data, b"not the passphrase at all")
            serialization.load_pem_private_key(data, PASSPHRASE.encode())
        assert (tmp_path / "ca").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "ca" / CA_CERT).stat().st_mode & 0o777 == 0o644
        with pytest.raises(PkiError, match="passphrase"):
            CertificateAuthority.open_or_create(tmp_path / "ca", "a wrong passphrase, long")
        with pytest.raises(PkiError, match="at least 16"):
            CertificateAuthority.open_or_create(tmp_path / "other", "short")

    def test_concurrent_creation(self, tmp_path: Path) -> None:
        """Processes starting at once on a fresh directory end with one CA and one signer key
        per user, whichever wrote first."""
        context = multiprocessing.get_context("fork")
        for attempt in range(3):
            directory = tmp_path / f"ca{attempt}"
            queue = context.Queue()
            barrier = context.Barrier(4)
            processes = [
                context.Process(target=_open, args=(str(directory), queue, barrier))
                for _ in range(4)
            ]
            for p in processes:
                p.start()
            results = [queue.get(timeout=60) for _ in processes]
            for p in processes:
                p.join(timeout=60)
                assert p.exitcode == 0
            assert len(set(results)) == 1, results
            ca = CertificateAuthority.open_or_create(directory, PASSPHRASE)
            assert ca.certificate.fingerprint(hashes.SHA256()).hex() == results[0][0]
            leftovers = [p.name for p in directory.rglob(".*")]
            assert leftovers == []  # no temporary file survives

    def test_signer_certificate(self, ca: CertificateAuthority) -> None:
        credentials = ca.issue_signer(
            9, "赵敏 Zhao Min", title="主治医师 Attending", email="zhao@example.org"
        )
        cert = credentials.certificate
        cert.verify_directly_issued_by(ca.certificate)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "赵敏 Zhao Min"
        assert cert.subject.get_attributes_for_oid(NameOID.TITLE)[0].value == "主治医师 Attending"
        assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "radrelay:9"
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION}
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert credentials.chain == (ca.certificate,)

    def test_signer_reused_until_it_no_longer_fits(self, tmp_path: Path) -> None:
        ca = CertificateAuthority.open_or_create(tmp_path / "ca", PASSPHRASE)
        first = ca.issue_signer(5, "孙丽 Sun Li", title="住院医师")
        assert ca.issue_signer(5, "孙丽 Sun Li", title="住院医师") is first
        # Another process (a fresh object) reads the same stored key.
        other = CertificateAuthority.open_or_create(tmp_path / "ca", PASSPHRASE)
        assert (
            other.issue_signer(5, "孙丽 Sun Li", title="住院医师").certificate == first.certificate
        )
        # A new qualification is a new certificate: the old one names the old title.
        promoted = other.issue_signer(5, "孙丽 Sun Li", title="主治医师")
        assert promoted.certificate != first.certificate
        assert promoted.certificate.serial_number != first.certificate.serial_number
        assert ca.issue_signer(5, "孙丽 Sun Li", title="主治医师").certificate == (
            promoted.certificate
        )


# --- signing and verifying ------------------------------------------------------------------


class TestSignAndVerify:
    def test_one_signature(self, ca: CertificateAuthority, report: bytes) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        pdf = signing.sign(
            report, ca.signer(7, "李娜 Li Na"), reason="author", location="云影", name="李娜"
        )
        # Incremental: the rendered report is still the start of the file, byte for byte.
        assert pdf.startswith(report)
        result = signing.verify(pdf, ca.trust_roots())
        assert result.valid and result.intact and result.trusted, result.problems
        assert result.problems == ()
        assert result.signer == "李娜 Li Na"
        assert result.signed_at is not None and result.signed_at >= before
        assert result.sha256 == signing.sha256_hex(pdf)
        (sig,) = result.signatures
        assert sig.field == "Signature1" and sig.level == "PAdES B-B" and not sig.timestamped

    def test_author_and_cosigner(self, ca: CertificateAuthority, signed: bytes) -> None:
        result = signing.verify(signed, ca.trust_roots())
        assert result.valid, result.problems
        assert [s.field for s in result.signatures] == [
            "RadRelay-v1-author",
            "RadRelay-v1-cosigner",
        ]
        assert [s.signer for s in result.signatures] == ["李娜 Li Na", "王建国 Wang Jianguo"]
        assert all(s.valid and s.intact and s.trusted for s in result.signatures)
        assert result.signer == "李娜 Li Na; 王建国 Wang Jianguo"

    def test_a_field_is_signed_once(self, ca: CertificateAuthority, signed: bytes) -> None:
        with pytest.raises(Exception, match="RadRelay-v1-author"):
            signing.sign(
                signed,
                ca.signer(7, "李娜 Li Na"),
                reason="author",
                location="云影",
                name="李娜",
                field=signing.signature_field(1, "author"),
            )

    def test_one_flipped_byte_is_caught(self, ca: CertificateAuthority, signed: bytes) -> None:
        reader = PdfFileReader(io.BytesIO(signed))
        byte_range = reader.embedded_signatures[0].byte_range
        start, length = int(byte_range[0]), int(byte_range[1])
        at = signed.index(b"RadRelay report 1024 v1")  # the title in the document information
        assert start <= at < start + length  # inside what the author signed
        tampered = bytearray(signed)
        tampered[at + 9] ^= 0x01  # "report" -> "reqort"
        result = signing.verify(bytes(tampered), ca.trust_roots())
        assert not result.intact and not result.valid
        assert all(not s.intact for s in result.signatures)
        assert "digest mismatch" in result.problems[0]
        # Still a PDF that opens and shows both signatures: only the digests disagree.
        assert len(PdfFileReader(io.BytesIO(bytes(tampered))).embedded_signatures) == 2

    def test_a_change_after_signing_is_caught(
        self, ca: CertificateAuthority, signed: bytes
    ) -> None:
        """An incremental update that draws on a page leaves the signed bytes intact, but
        verification sees that the last signature no longer covers the file."""
        writer = IncrementalPdfFileWriter(io.BytesIO(signed))
        stamp = generic.StreamObject(stream_data=b"BT /F1 30 Tf 100 400 Td (NORMAL) Tj ET")
        writer.add_stream_to_page(0, writer.add_object(stamp))
        out = io.BytesIO()
        writer.write(out)
        result = signing.verify(out.getvalue(), ca.trust_roots())
        assert result.intact and not result.valid
        assert "the file was changed after its last signature" in result.problems

    def test_another_ca_is_not_trusted(
        self, ca: CertificateAuthority, signed: bytes, tmp_path: Path
    ) -> None:
        stranger = CertificateAuthority.open_or_create(tmp_path / "other", PASSPHRASE)
        result = signing.verify(signed, stranger.trust_roots())
        assert result.intact and not result.trusted and not result.valid
        assert "certificate is not trusted" in result.problems[0]

    def test_unsigned_and_unreadable(self, ca: CertificateAuthority, report: bytes) -> None:
        unsigned = signing.verify(report, ca.trust_roots())
        assert not unsigned.valid and unsigned.problems == ("the PDF has no signature",)
        garbage = signing.verify(b"not a pdf", ca.trust_roots())
        assert not garbage.valid and "not a readable PDF" in garbage.problems[0]

    def test_timestamped_b_t(
        self, ca: CertificateAuthority, report: bytes, tsa: tuple[str, x509.Certificate]
    ) -> None:
        url, tsa_root = tsa
        pdf = signing.sign(
            report,
            ca.signer(7, "李娜 Li Na"),
            reason="author",
            location="云影",
            name="李娜",
            timestamp_url=url,
        )
        result = signing.verify(pdf, [*ca.trust_roots(), tsa_root])
        assert result.valid, result.problems
        (sig,) = result.signatures
        assert sig.timestamped and sig.level == "PAdES B-T"
        assert sig.signed_at is not None
        assert abs(sig.signed_at - datetime.now(UTC)) < timedelta(minutes=1)
        # Without the TSA's root the token is not trusted, and so neither is the signature.
        assert not signing.verify(pdf, ca.trust_roots()).valid


@pytest.fixture(scope="module")
def tsa() -> Iterator[tuple[str, x509.Certificate]]:
    """An RFC 3161 timestamp authority on loopback: pyHanko's DummyTimeStamper (which signs
    every request) behind HTTP, with a root of its own. Yields its URL and that root."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA Root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    tsa_key = rsa.generate_private_key(
        public_exponent=65537, key_size=2048
    )  # pyHanko's is RSA-only
    tsa_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")]))
        .issuer_name(root_name)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    der = serialization.Encoding.DER
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(tsa_cert.public_bytes(der)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            tsa_key.private_bytes(
                der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        certs_to_embed=[asn1_x509.Certificate.load(root.public_bytes(der))],  # type: ignore[arg-type]
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa", root
    finally:
        server.shutdown()
        server.server_close()


class TestVisibleCosignature:
    def test_both_signatures_stay_valid(self, ca: CertificateAuthority, stamped: bytes) -> None:
        result = signing.verify(stamped, ca.trust_roots())
        assert result.valid, result.problems
        assert [s.field for s in result.signatures] == [
            "RadRelay-v1-author",
            "RadRelay-v2-cosigner",
        ]
        assert all(s.valid and s.intact and s.trusted for s in result.signatures)

    def test_the_stamp_reads_final_on_page_one(self, stamped: bytes, tmp_path: Path) -> None:
        first = flatten(pdftotext(stamped, tmp_path).split("\f")[0])
        assert "FINAL REPORT" in first and "Wang Jianguo" in first
        assert "初步报告 PRELIMINARY" in first  # what the author signed is unchanged
        if signing.stamp_font_available():
            assert "正式报告 FINAL REPORT" in first
            assert "审核医师 Co-signed by 王建国 Wang Jianguo" in first

    def test_the_stamp_is_in_the_band_kept_free(self, tmp_path: Path) -> None:
        # Nothing of the preliminary's own text is drawn where the stamp goes.
        preliminary = render(sample_document(status=ReportStatus.preliminary, cosigned=False))
        path = tmp_path / "p.pdf"
        path.write_bytes(preliminary)
        _, y1, _, y2 = COSIGN_STAMP_BOX
        height = 841.89  # A4; pdftotext -bbox counts y from the top
        args = ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if "<word " not in line:
                continue
            top = float(line.split('yMin="')[1].split('"')[0])
            bottom = float(line.split('yMax="')[1].split('"')[0])
            assert bottom < height - y2 or top > height - y1, line

    @pytest.mark.skipif(not signing.stamp_font_available(), reason="fonts-wqy-microhei")
    def test_the_stamp_is_spaced_as_its_font_says(self, stamped: bytes, tmp_path: Path) -> None:
        # wqy-microhei has 2048 units per em; pyHanko wrote its widths as if 1000, which drew
        # each letter about twice its width apart and ran the stamp out of its box.
        path = tmp_path / "s.pdf"
        path.write_bytes(stamped)
        args = ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        words = {}
        for line in out.splitlines():
            if "<word " in line:
                x = [float(line.split(f'{k}="')[1].split('"')[0]) for k in ("xMin", "xMax")]
                words.setdefault(line.split(">")[1].split("<")[0], x)
        face = ttLib.TTCollection(str(signing.STAMP_FONT)).fonts[0]
        cmap, advances = face.getBestCmap(), face["hmtx"].metrics
        x1, _, x2, _ = COSIGN_STAMP_BOX
        scales = []
        for text in STAMP.split("\n"):
            # The stamp's lines carry their text as /ActualText: pdftotext gives a line a box.
            x_min, x_max = words[text]
            width = sum(advances[cmap[ord(c)]][0] for c in text) / face["head"].unitsPerEm
            scales.append((x_max - x_min) / (width * signing.STAMP_FONT_SIZE))
            assert x1 < x_min < x_max < x2, (text, x_min, x_max)
        # pyHanko fits the stamp into the band, scaling it a little (both lines alike); the
        # letters are as far apart as the font's advances say, not twice as far.
        assert 0.75 < scales[0] < 1.02 and scales[1] == pytest.approx(scales[0], rel=0.02)

    @pytest.mark.skipif(not shutil.which("certutil"), reason="libnss3-tools (make system-deps)")
    def test_pdfsig_accepts_it(
        self, ca: CertificateAuthority, stamped: bytes, tmp_path: Path
    ) -> None:
        out = pdfsig(stamped, nss_db(tmp_path, ca.certificate), tmp_path)
        assert out.count("Signature Validation: Signature is Valid.") == 2, out
        assert "Total document signed" in out


# --- poppler's pdfsig and the CLI -----------------------------------------------------------


def nss_db(tmp_path: Path, trusted: x509.Certificate | None) -> str:
    """An NSS certificate database (what pdfsig reads), trusting ``trusted`` for e-mail and
    object signing as a CA."""
    db = tmp_path / "nssdb"
    db.mkdir()
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True
    )
    if trusted is not None:
        pem = tmp_path / "trusted.crt"
        pem.write_bytes(trusted.public_bytes(serialization.Encoding.PEM))
        subprocess.run(
            ["certutil", "-A", "-d", f"sql:{db}", "-n", "radrelay-ca", "-t", "CT,C,C", "-i", pem],
            check=True,
            capture_output=True,
        )
    return f"sql:{db}"


def pdfsig(pdf: bytes, nssdir: str, tmp_path: Path) -> str:
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdfsig", "-nssdir", nssdir, str(path)], capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


@pytest.mark.skipif(not shutil.which("certutil"), reason="libnss3-tools (make system-deps)")
class TestPdfsig:
    def test_valid_and_trusted_when_the_ca_is(
        self, ca: CertificateAuthority, signed: bytes, tmp_path: Path
    ) -> None:
        out = pdfsig(signed, nss_db(tmp_path, ca.certificate), tmp_path)
        assert out.count("Signature Validation: Signature is Valid.") == 2, out
        assert out.count("Certificate Validation: Certificate is Trusted.") == 2, out
        assert "Signature Field Name: RadRelay-v1-author" in out
        assert "Signer Certificate Common Name: 王建国 Wang Jianguo" in out
        assert "Signature Type: ETSI.CAdES.detached" in out  # PAdES
        assert "Total document signed" in out  # by the co-signer's, the last

    def test_untrusted_without_the_ca(self, signed: bytes, tmp_path: Path) -> None:
        out = pdfsig(signed, nss_db(tmp_path, None), tmp_path)
        assert out.count("Signature Validation: Signature is Valid.") == 2, out
        assert "Certificate is Trusted" not in out
        assert "Certificate issuer isn't Trusted." in out

    def test_tampered(self, ca: CertificateAuthority, signed: bytes, tmp_path: Path) -> None:
        tampered = bytearray(signed)
        tampered[signed.index(b"RadRelay report 1024 v1") + 9] ^= 0x01
        out = pdfsig(bytes(tampered), nss_db(tmp_path, ca.certificate), tmp_path)
        assert out.count("Signature Validation: Digest Mismatch.") == 2, out


def radrelay(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RADRELAY_DATA_DIR": str(data_dir), "RADRELAY_LOG_LEVEL": "warning"}
    return subprocess.run(
        [str(BIN / "radrelay"), *args], capture_output=True, text=True, env=env, timeout=120
    )


class TestVerifyCommand:
    def test_good_and_tampered(
        self, ca: CertificateAuthority, signed: bytes, tmp_path: Path
    ) -> None:
        good = tmp_path / "good.pdf"
        good.write_bytes(signed)
        ca_file = tmp_path / "ca.crt"
        ca_file.write_bytes(ca.certificate_pem)
        done = radrelay("reports", "verify", str(good), "--ca", str(ca_file), data_dir=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert "intact: yes" in lines and "valid: yes" in lines
        assert "signer: 李娜 Li Na; 王建国 Wang Jianguo" in lines
        assert any(line.startswith("time: ") and line.endswith("+08:00") for line in lines)
        assert f"sha256: {signing.sha256_hex(signed)}" in lines
        assert "problem" not in done.stdout

        tampered = bytearray(signed)
        tampered[signed.index(b"RadRelay report 1024 v1") + 9] ^= 0x01
        bad = tmp_path / "bad.pdf"
        bad.write_bytes(bytes(tampered))
        done = radrelay("reports", "verify", str(bad), "--ca", str(ca_file), data_dir=tmp_path)
        assert done.returncode == 1
        assert "intact: NO" in done.stdout and "valid: NO" in done.stdout
        assert "digest mismatch" in done.stdout

    def test_default_trust_root_is_the_platform_ca(self, signed: bytes, tmp_path: Path) -> None:
        """Without --ca the CA under the data dir is trusted: ours is not the one that signed,
        then it is."""
        settings = Settings(data_dir=tmp_path, secret_key="s" * 40)
        (tmp_path / "r.pdf").write_bytes(signed)
        done = radrelay("reports", "verify", str(tmp_path / "r.pdf"), data_dir=tmp_path)
        assert done.returncode == 1 and "no CA certificate" in done.stderr

        own = CertificateAuthority.open_or_create(
            settings.ca_dir, settings.resolved_ca_passphrase()
        )
        pdf = signing.sign(
            signed, own.signer(3, "周杰 Zhou Jie"), reason="addendum", location="云影", name="周杰"
        )
        (tmp_path / "r.pdf").write_bytes(pdf)
        done = radrelay("reports", "verify", str(tmp_path / "r.pdf"), data_dir=tmp_path)
        # The third signature (ours) is trusted, the first two are not (another CA).
        assert done.returncode == 1
        assert "trusted yes" in done.stdout.splitlines()[-3]
        assert done.stdout.count("trusted NO") == 2


def test_settings_ca_passphrase(tmp_path: Path) -> None:
    derived = Settings(data_dir=tmp_path, secret_key="k" * 40)
    assert derived.ca_dir == tmp_path / "ca"
    passphrase = derived.resolved_ca_passphrase()
    assert len(passphrase) == 64 and passphrase != "k" * 40
    assert Settings(data_dir=tmp_path, secret_key="k" * 40).resolved_ca_passphrase() == passphrase
    assert Settings(data_dir=tmp_path, secret_key="j" * 40).resolved_ca_passphrase() != passphrase
    explicit = Settings(data_dir=tmp_path, secret_key="k" * 40, ca_passphrase="p" * 20)
    assert explicit.resolved_ca_passphrase() == "p" * 20


def test_sample_images_are_jpeg() -> None:
    assert ct_jpeg(1)[:3] == b"\xff\xd8\xff"
    assert sample_document(key_images=0).key_images == ()
    assert sample_document().hospital == Party(
        "青石县人民医院", code="QSX", address="青石县人民路 1 号"
    )
