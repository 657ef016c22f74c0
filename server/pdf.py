"""HTML and CSS to PDF for the court's documents (agreements, rulings, service
certificates), through WeasyPrint: A4, the Noto CJK fonts embedded as subsets, nothing
fetched from anywhere (images come inline as ``data:`` URLs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BASE_CSS = """
@page { size: A4; margin: 25mm 22mm 22mm 22mm;
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 9pt; } }
html { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", serif; font-size: 12pt;
  line-height: 1.7; color: #000; }
h1 { font-size: 20pt; text-align: center; letter-spacing: .2em; margin: 0 0 .3em; }
.number { text-align: right; margin: 0 0 1.2em; }
"""


class PdfUnavailable(RuntimeError):
    """WeasyPrint cannot load the system's Pango."""


def render_pdf(markup: str, stylesheets: Sequence[str] = (), *, images: bool = False) -> bytes:
    """The document ``markup`` (escaped HTML) as PDF bytes; ``images`` allows inline
    ``data:`` images (signatures, seals) and nothing else."""
    try:  # loads Pango: imported here so that everything else works without it
        from weasyprint import CSS, HTML  # type: ignore[import-untyped]
        from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]
    except OSError as error:
        raise PdfUnavailable(
            "PDF documents need Pango (Debian: libpango-1.0-0 libpangoft2-1.0-0)"
        ) from error
    fetcher = URLFetcher(allowed_protocols=("data",) if images else ())
    html: Any = HTML(string=markup, base_url=None, url_fetcher=fetcher)
    sheets = [CSS(string=BASE_CSS, url_fetcher=fetcher)]
    sheets += [CSS(string=sheet, url_fetcher=fetcher) for sheet in stylesheets]
    pdf: bytes = html.write_pdf(stylesheets=sheets)
    return pdf
