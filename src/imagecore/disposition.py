"""How a download names its file."""

from __future__ import annotations

import urllib.parse


def attachment_disposition(filename: str) -> str:
    """The Content-Disposition of a download (RFC 6266): an ASCII fallback and the UTF-8 name."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
    quoted = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{ascii_name or 'image'}\"; filename*=UTF-8''{quoted}"
