"""Reading uploaded text files: detect UTF-8 (with or without BOM) or GB18030, never guess wrong."""

from __future__ import annotations

import csv
import io
import unicodedata

from flask_babel import lazy_gettext as _l


class FileProblem(Exception):
    """The file as a whole cannot be read; the message says what to do."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def _plausible_chinese(text: str) -> bool:
    """Text decoded as GB18030 should be ASCII, CJK ideographs and CJK/full-width punctuation.

    GB18030 can decode almost any bytes, so a Latin-1 or Shift-JIS file would decode to nonsense
    without this check.
    """
    for ch in text:
        if ord(ch) < 128:
            continue
        name = unicodedata.name(ch, "")
        if not name.startswith(
            (
                "CJK",
                "FULLWIDTH",
                "IDEOGRAPHIC",
                "HALFWIDTH",
                "MIDDLE DOT",
                "LEFT",
                "RIGHT",
                "EM DASH",
                "HORIZONTAL ELLIPSIS",
            )
        ):
            return False
    return True


def decode_text(data: bytes) -> tuple[str, str]:
    """Return (encoding, text) for a CSV file's bytes, or raise FileProblem."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileProblem(_l("The file is UTF-16 text. Save it as CSV UTF-8 and try again."))
    if data.startswith(b"PK\x03\x04") or b"\x00" in data[:4096]:
        raise FileProblem(
            _l(
                "The file is not a CSV text file (is it an Excel workbook?). "
                "Save it as CSV and try again."
            )
        )
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return "utf-8-sig", data[3:].decode("utf-8")
        except UnicodeDecodeError:
            pass
    else:
        try:
            return "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            text = None
        if text is not None and _plausible_chinese(text):
            return "gb18030", text
    raise FileProblem(
        _l(
            "The file's encoding is neither UTF-8 nor GB18030/GBK. "
            "Save it as CSV UTF-8 and try again."
        )
    )


def read_csv(
    data: bytes, required: list[str], optional: list[str] = ()
) -> tuple[str, list[str], list[tuple[int, dict]]]:
    """Decode and parse a CSV with a header row.

    Returns (encoding, unknown_columns, rows) where rows are (row_number, {column: value}),
    row numbers as a spreadsheet shows them (the header is row 1). Column names are matched
    without surrounding spaces and case.
    """
    encoding, text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem(_l("The file is empty. It needs a header row and data rows.")) from None
    except csv.Error as exc:
        raise FileProblem(_l("The file is not valid CSV: %(error)s", error=str(exc))) from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise FileProblem(
            _l(
                "Missing column(s): %(columns)s. The header row must name: %(required)s.",
                columns=", ".join(missing),
                required=", ".join(required),
            )
        )
    known = set(required) | set(optional)
    unknown = [n for n in names if n and n not in known]
    rows = []
    try:
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            rows.append(
                (
                    number,
                    {
                        n: (values[i].strip() if i < len(values) else "")
                        for i, n in enumerate(names)
                        if n
                    },
                )
            )
    except csv.Error as exc:
        raise FileProblem(
            _l("Row %(row)s is not valid CSV: %(error)s", row=reader.line_num, error=str(exc))
        ) from None
    return encoding, unknown, rows
