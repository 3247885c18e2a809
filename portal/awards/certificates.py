"""Certificates: one A4 page per award, rendered to a file once (and again when the award
changes), with a QR code of its public verification page."""

from __future__ import annotations

import itertools
import os
import tempfile
from datetime import datetime
from pathlib import Path

import qrcode
from flask import current_app
from flask_babel import force_locale
from markupsafe import Markup

from portal.awards.models import Award
from portal.awards.services import award_name, citation
from portal.pdf import CJK_FONTS, render_pdf


def folder() -> Path:
    return Path(current_app.config["CERTIFICATES_DIR"])


def verify_url(award: Award) -> str:
    return f"{current_app.config['PORTAL_BASE_URL']}/verify/{award.certificate_no}"


def qr_svg(text: str) -> Markup:
    """A QR code as inline SVG (vector: sharp in print, no image library needed). A fixed mask
    pattern skips the search over all eight, which took longer than rendering the page. Each
    row's run of dark modules is one stroked line: WeasyPrint draws SVG paths in Python, and
    a square per module (qrcode's SVG images) made the code a third of the page's render."""
    code = qrcode.QRCode(border=1, mask_pattern=0)
    code.add_data(text)
    modules = code.get_matrix()  # rows of booleans, the border included
    runs = []
    for y, row in enumerate(modules):
        x = 0
        for dark, group in itertools.groupby(row):
            length = len(list(group))
            if dark:
                runs.append(f"M{x} {y}.5h{length}")
            x += length
    size = len(modules)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}">'
        f'<path stroke="#000" stroke-width="1" d="{"".join(runs)}"/></svg>'
    )


def certificate_html(award: Award) -> str:
    """The certificate's page, always in the portal's own language (zh_CN by default). Rendered
    by the template engine alone: the close runs in the scheduler, outside any request."""
    locale = current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        return current_app.jinja_env.get_template("awards/certificate.html").render(
            lang=locale.replace("_", "-"),
            award=award,
            name=award_name(award.award_type),
            citation=citation(award),
            url=verify_url(award),
            qr=qr_svg(verify_url(award)),
            fonts=Markup(CJK_FONTS),
        )


def render_certificate(award: Award, now: datetime) -> Path:
    """Render the award's certificate to its file (written whole, then moved into place, so
    a reader never sees half a PDF) and remember where it is."""
    relative = Path(award.period.key) / f"{award.certificate_no}.pdf"
    target = folder() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    data = render_pdf(certificate_html(award))
    fd, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, target)
    award.pdf_path, award.rendered_at = str(relative), now
    return target


def certificate_file(award: Award, now: datetime) -> Path:
    """The certificate's file, rendered first if it is missing or out of date."""
    if award.pdf_path and (folder() / award.pdf_path).is_file():
        return folder() / award.pdf_path
    return render_certificate(award, now)
