"""Absolute URLs in answers (STOW-RS RetrieveURL, QIDO RetrieveURL, BulkDataURI)."""

from __future__ import annotations

from starlette.requests import Request


def dicomweb_base(request: Request) -> str:
    """``RADRELAY_PUBLIC_URL`` when set (behind a proxy, or for clients such as dicomweb-client
    that send Host without the port), else the request's own address; plus ``/dicomweb``."""
    public = request.app.state.runtime.settings.public_url
    return (public or str(request.base_url)).rstrip("/") + "/dicomweb"
