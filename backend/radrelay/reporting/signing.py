"""PAdES signatures on report PDFs, and their verification, with pyHanko.

``sign`` appends a signature to the PDF as an incremental update, so what was signed before
stays byte for byte as it was: the author signs the rendered report, a co-signer signs the
author's signed file, and both signatures verify. The level is PAdES B-B (ETSI EN 319 142-1:
CAdES detached, the signing certificate bound in the signed attributes), B-T when a timestamp
authority is given: the signature then carries the TSA's token, a time that does not depend on
our clock and that outlives the signer's certificate.

``verify`` checks every signature of a PDF against the given trust roots: the bytes each covers
are unchanged (intact), the signature and its chain are good (valid, trusted), later revisions
only added signatures, and nothing follows the last signature. ``Verification.valid`` is the one
answer a caller needs; ``problems`` says in words what is wrong.

Both run pyHanko's own event loop: from async code call them in a worker thread
(``asyncio.to_thread``), which their CPU cost calls for anyway. The reporting service keeps the
signed bytes unchanged and their ``sha256`` beside them.

A signature can also be visible: ``stamp`` text drawn in a ``box`` on page 1, as the appearance
of the signature's own widget (the co-signer's "正式报告 FINAL REPORT" stamp). The appearance is
part of the same incremental update, so earlier signatures stay valid. Chinese text needs an
OpenType/TrueType font file (pyHanko cannot use reportlab's STSong-Light); ``stamp_font``, or
Debian's fonts-wqy-microhei when installed (``STAMP_FONT``). ``stamp_font_available`` says
whether one is, so that a caller without one can fall back to Latin-only text.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fontTools import ttLib
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

# The TrueType CJK font the Makefile installs (fonts-wqy-microhei): the stamp's default font.
STAMP_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
STAMP_FONT_SIZE = 10
STAMP_COLOUR = (0.75, 0.1, 0.1)  # a red seal's colour


def sha256_hex(data: bytes) -> str:
    """The hash kept beside a stored signed PDF."""
    return hashlib.sha256(data).hexdigest()


def signature_field(version: int, meaning: str) -> str:
    """The form field a signature goes in: one per report version and meaning
    (``RadRelay-v2-author``), so that a field can never be signed twice."""
    return f"RadRelay-v{version}-{meaning}"


def stamp_font_available(font: Path | None = None) -> bool:
    """Whether a visible stamp can carry Chinese text: ``font`` (or ``STAMP_FONT``) exists."""
    return (font or STAMP_FONT).is_file()


@cache
def _font_bytes(path: Path) -> bytes:
    """The font file as one TrueType/OpenType face: the first face of a collection (``.ttc``),
    which pyHanko's ``GlyphAccumulator`` cannot open itself."""
    data = path.read_bytes()
    if data[:4] != b"ttcf":
        return data
    out = io.BytesIO()
    ttLib.TTCollection(io.BytesIO(data)).fonts[0].save(out)
    return out.getvalue()


class _EmGlyphAccumulator(GlyphAccumulator):
    """pyHanko's ``GlyphAccumulator`` writes the glyph widths (``/W``) and the ``TJ``
    adjustments in the font's own units, which a PDF reader takes as thousandths of an em
    (ISO 32000-1 9.2.4, 9.7.4.3). That is right for fonts of 1000 units per em (most CFF
    fonts) and wrong for TrueType fonts of 2048 (wqy-microhei): each glyph then advanced about
    twice its width and the stamp's letters stood far apart, overflowing its box. Here shaping,
    widths and adjustments are all in thousandths of an em, whatever the font's units."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._to_thousandths = 1000 / self.units_per_em
        self.units_per_em = 1000
        self.hb_font.scale = (1000, 1000)  # HarfBuzz advances in thousandths of an em too

    def _get_cid_and_width(self, glyph_id: int) -> tuple[int, int]:
        cached = self._glyphs.get(glyph_id)
        if cached is not None:
            return cached
        cid, width = super()._get_cid_and_width(glyph_id)
        # Kept for /W (written from this cache) in the same units as the advances.
        self._glyphs[glyph_id] = scaled = (cid, round(width * self._to_thousandths))
        return scaled


@dataclass(frozen=True)
class _FontFactory(FontEngineFactory):
    """pyHanko's ``GlyphAccumulatorFactory``, from font bytes rather than a file name: the
    glyphs used are embedded as a subset, with a ToUnicode map (the stamp reads back)."""

    font: bytes
    size: int = STAMP_FONT_SIZE

    def create_font_engine(
        self, writer: BasePdfFileWriter, obj_stream: Any = None
    ) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return _EmGlyphAccumulator(
            writer=writer,
            font_handle=io.BytesIO(self.font),
            font_size=self.size,
            obj_stream=obj_stream,
        )


def _stamp_style(text: str, font: Path | None) -> TextStampStyle:
    path = font or STAMP_FONT
    box_style = TextBoxStyle(
        font=_FontFactory(_font_bytes(path)) if path.is_file() else TextBoxStyle().font,
        font_size=STAMP_FONT_SIZE,
        leading=STAMP_FONT_SIZE + 3,
        text_color=STAMP_COLOUR,
    )
    return TextStampStyle(
        # pyHanko interpolates %(ts)s and friends: a literal % must be doubled.
        stamp_text=text.replace("%", "%%"),
        text_box_style=box_style,
        border_width=2,
        background=None,
    )


def sign(
    pdf: bytes,
    signer: Signer,
    *,
    reason: str,
    location: str,
    name: str,
    field: str | None = None,
    timestamp_url: str | None = None,
    timestamper: TimeStamper | None = None,
    contact: str = "",
    stamp: str | None = None,
    box: tuple[int, int, int, int] | None = None,
    stamp_font: Path | None = None,
) -> bytes:
    """``pdf`` with one more signature, appended as an incremental update.

    ``reason`` is the meaning of the signature (21 CFR 11.50: "author", "co-signer"), shown by
    PDF readers; ``name`` the signer's printed name; ``location`` the reading center.
    ``field`` names the signature field (see ``signature_field``; default ``Signature<n>``).
    PAdES B-B, or B-T with the RFC 3161 timestamp authority at ``timestamp_url`` (or any
    pyHanko ``timestamper``). Raises pyHanko's errors when the PDF cannot be signed (for
    instance when ``field`` is already signed) and ``TimestampRequestError`` when the TSA
    does not answer: a report is then not signed rather than signed at a lower level.

    ``stamp`` makes the signature visible: the text (lines split at ``\\n``) drawn in ``box``
    (x1, y1, x2, y2 in points, on page 1) with ``stamp_font`` (default ``STAMP_FONT``; without
    a font file only Latin text can be drawn). Without ``stamp`` the signature is invisible."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    if field is None:
        existing = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        field = f"Signature{len(existing) + 1}"
    if timestamper is None and timestamp_url:
        timestamper = HTTPTimeStamper(timestamp_url)
    metadata = PdfSignatureMetadata(
        field_name=field,
        md_algorithm="sha256",
        reason=reason,
        location=location,
        name=name,
        contact_info=contact or None,
        subfilter=SigSeedSubFilter.PADES,
    )
    field_spec = None
    style = None
    if stamp is not None:
        if box is None:
            raise ValueError("a visible signature needs a box")
        field_spec = SigFieldSpec(sig_field_name=field, on_page=0, box=box)
        style = _stamp_style(stamp, stamp_font)
    out = io.BytesIO()
    PdfSigner(
        metadata,
        signer=signer,
        timestamper=timestamper,
        stamp_style=style,
        new_field_spec=field_spec,
    ).sign_pdf(writer, output=out)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One signature of the file, as ``verify`` found it."""

    field: str
    signer: str  # the certificate's common name
    signed_at: datetime | None  # the TSA's time when timestamped, else the signer's own claim
    timestamped: bool  # B-T: the time comes from a timestamp authority
    intact: bool  # the bytes it covers are unchanged
    trusted: bool  # its certificate chains to a trust root
    valid: bool  # intact, cryptographically good, trusted, later changes allowed
    problems: tuple[str, ...]

    @property
    def level(self) -> str:
        return "PAdES B-T" if self.timestamped else "PAdES B-B"


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` says about a whole PDF. ``valid`` is the answer: every signature valid,
    at least one, and nothing added after the last."""

    intact: bool
    valid: bool
    trusted: bool
    signer: str  # the signers' names in signing order, "; " between them
    signed_at: datetime | None  # of the last signature: when the file took its final form
    sha256: str
    problems: tuple[str, ...]
    signatures: tuple[SignatureCheck, ...] = ()


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _context(roots: Sequence[asn1_x509.Certificate]) -> ValidationContext:
    # No fetching: the platform CA publishes no CRL or OCSP responder, and a verification must
    # not depend on the network; a licensed CA's revocation data would be embedded (B-LT).
    return ValidationContext(trust_roots=list(roots), allow_fetching=False)


# Our certificates carry nonRepudiation; a licensed CA's may carry only digitalSignature.
KEY_USAGE = KeyUsageConstraints(
    key_usage={"non_repudiation", "digital_signature"}, match_all_key_usages=False
)


def verify(pdf: bytes, trust_roots: Sequence[x509.Certificate]) -> Verification:
    """Check every signature in ``pdf`` against ``trust_roots`` (the platform CA certificate,
    or a licensed CA's root; a TSA's root too for B-T). Never raises for a bad file: a file
    that cannot be read is reported as not valid, with the reason in ``problems``."""
    digest = sha256_hex(pdf)
    roots = [_asn1(c) for c in trust_roots]
    try:
        embedded = list(PdfFileReader(io.BytesIO(pdf)).embedded_signatures)
    except Exception as exc:  # a damaged or hostile file: say so, do not crash the caller
        return Verification(False, False, False, "", None, digest, (f"not a readable PDF: {exc}",))
    if not embedded:
        return Verification(False, False, False, "", None, digest, ("the PDF has no signature",))

    checks: list[SignatureCheck] = []
    coverage: SignatureCoverageLevel | None = None
    for number, sig in enumerate(embedded, 1):
        check, coverage = _check(sig, number, roots)
        checks.append(check)
    problems = [p for c in checks for p in c.problems]
    covers_all = coverage == SignatureCoverageLevel.ENTIRE_FILE
    if not covers_all and checks[-1].intact:
        problems.append("the file was changed after its last signature")
    signed = [c for c in checks if c.signer]
    return Verification(
        intact=all(c.intact for c in checks),
        valid=covers_all and all(c.valid for c in checks),
        trusted=all(c.trusted for c in checks),
        signer="; ".join(c.signer for c in signed),
        signed_at=checks[-1].signed_at,
        sha256=digest,
        problems=tuple(problems),
        signatures=tuple(checks),
    )


def _check(
    sig: EmbeddedPdfSignature, number: int, roots: Sequence[asn1_x509.Certificate]
) -> tuple[SignatureCheck, SignatureCoverageLevel | None]:
    """One signature's check, and how much of the file it covers."""
    name = str(sig.field_name or f"#{number}")
    label = f"signature {number} ({name})"
    try:
        if sig.sig_object_type == "/DocTimeStamp":
            ts = validate_pdf_timestamp(sig, validation_context=_context(roots))
            check = SignatureCheck(
                field=name,
                signer="",
                signed_at=ts.timestamp,
                timestamped=True,
                intact=ts.intact,
                trusted=ts.trusted,
                valid=ts.intact and ts.valid and ts.trusted,
                problems=() if ts.trusted else (f"{label}: document timestamp not trusted",),
            )
            return check, ts.coverage
        status = validate_pdf_signature(sig, _context(roots), key_usage_settings=KEY_USAGE)
    except Exception as exc:  # pyHanko raises for damaged signature data or structure
        failed = SignatureCheck(name, "", None, False, False, False, False, (f"{label}: {exc}",))
        return failed, None

    signer = str(status.signing_cert.subject.native.get("common_name", ""))
    stamp = status.timestamp_validity
    problems: list[str] = []
    if not status.intact:
        problems.append(f"{label}: the signed bytes were changed (digest mismatch)")
    elif not status.valid:
        problems.append(f"{label}: the signature value does not match the certificate's key")
    elif not status.trusted:
        indication = status.trust_problem_indic
        # The AdES sub-indication (ETSI EN 319 102-1), e.g. NO_CERTIFICATE_CHAIN_FOUND.
        why = str(indication.standard_name) if indication else "no trusted path"
        why = why.lower().replace("_", " ")
        problems.append(f"{label}: {signer}'s certificate is not trusted ({why})")
    if stamp is not None and not (stamp.intact and stamp.valid and stamp.trusted):
        problems.append(f"{label}: its timestamp is not valid or not trusted")
    if status.intact and status.valid and status.trusted and not status.bottom_line:
        level = status.modification_level
        problems.append(
            f"{label}: the file was modified after this signature"
            + (f" ({level.name.lower().replace('_', ' ')})" if level else "")
        )
    check = SignatureCheck(
        field=name,
        signer=signer,
        signed_at=stamp.timestamp if stamp is not None else status.signer_reported_dt,
        timestamped=stamp is not None,
        intact=status.intact,
        trusted=status.trusted,
        valid=status.bottom_line,
        problems=tuple(problems),
    )
    return check, status.coverage
