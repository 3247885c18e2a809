"""PDF rendering with WeasyPrint: one font configuration per process (loading the CJK fonts
is the slow part of a first render), and a check that HarfBuzz's subsetting library is there."""

from __future__ import annotations

import ctypes.util
import functools

from flask import current_app

# Families tried in order: whichever CJK font set-up installed (Debian: fonts-wqy-microhei, or
# fonts-noto-cjk) prints the Chinese text.
CJK_FONTS = '"WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", sans-serif'
# Logged at start when the library is missing (docs/BENCHMARKS.md has the measured difference).
SUBSETTING_MISSING = (
    "HarfBuzz's subsetting library is not installed: certificates and PDF reports will be slow "
    "(seconds per PDF, the CJK font is subset in Python). Install libharfbuzz-subset0 "
    "(apt-get install libharfbuzz-subset0; `make setup` does it when run as root)."
)


def subsetting_missing() -> bool:
    """True when libharfbuzz-subset is not installed: WeasyPrint then subsets the embedded CJK
    font in Python, which takes seconds per document instead of milliseconds."""
    return ctypes.util.find_library("harfbuzz-subset") is None


@functools.cache
def _fonts():
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def render_pdf(html: str) -> bytes:
    """The PDF of an HTML document (its styles inline; links resolved against the portal)."""
    from weasyprint import HTML

    return HTML(string=html, base_url=current_app.config["PORTAL_BASE_URL"]).write_pdf(
        font_config=_fonts()
    )
