"""Court transcript documents (笔录): a :class:`CourtRecord` as DOCX or PDF.

Both follow the layout a Chinese court uses: the court's name and the title centred at
the top; a block with the case number, cause, time, place, who presided, the clerk and
the participants by seat; the lines in order as "seat name：text" with their time on the
session clock, undisputed facts (无争议事实) marked; the parties' sign-offs with any
objection (补正) quoted in full, or a line for each to sign; page numbers and, once the
transcript is frozen, its SHA-256 and freeze time in the footer, or a draft notice.

DOCX is written with python-docx (East Asian fonts set through ``w:eastAsia`` so Word
picks the CJK face). PDF is HTML and CSS (``templates/court_record.html`` and ``.css``,
autoescaped Jinja2) laid out by WeasyPrint through Pango, which embeds a subset of every
font it uses with its ToUnicode map. WeasyPrint rather than reportlab: the CJK font is
Debian's Noto Serif/Sans CJK SC (fonts-noto-cjk), OpenType with CFF outlines, which
reportlab cannot embed (it embeds TrueType outlines only).

Both renderers are synchronous and CPU-bound: run them in a worker thread. Labels are
English msgids passed through ``translate``; everything else (seats, names, text) is
shown as given.
"""

from __future__ import annotations

import io
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import cast
from zoneinfo import ZoneInfo

import docx
import jinja2
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.text.font import CT_RPr
from docx.oxml.text.paragraph import CT_P
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Mm, Pt, RGBColor
from docx.styles.style import ParagraphStyle
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from transcription.court_record import CourtRecord, Signoff
from transcription.formats import timestamp

__all__ = ["N_", "Progress", "Translate", "to_docx", "to_pdf"]

Translate = Callable[[str], str]
Progress = Callable[[float], None]

SERIF = "Noto Serif CJK SC"


def N_(message: str) -> str:
    """Mark a message for translation; the caller translates it."""
    return message


CASE_NUMBER = N_("Case number")
CAUSE = N_("Cause of action")
TIME = N_("Time")
PLACE = N_("Place")
PRESIDING = N_("Presiding")
CLERK = N_("Clerk")
PARTICIPANTS = N_("Participants")
PROCEEDINGS = N_("Record of proceedings")
UNDISPUTED = N_("[Undisputed fact]")
SIGNATURES = N_("Signatures")
OBJECTION = N_("Objection:")
SIGNATURE = N_("Signature:")
DATE_LABEL = N_("Date:")
DRAFT = N_("Draft")
DRAFT_NOTICE = N_("Draft: not yet confirmed by the parties")
DATE = N_("{year}-{month:02d}-{day:02d}")
SPEAKER = N_("{speaker}:")
NOTED = N_("{who} ({note})")
PAGE = N_("Page {page} of {pages}")
HASH = N_("SHA-256 of the frozen transcript: {hash}")
FROZEN_AT = N_("Frozen at {time}")
GENERATED_AT = N_("Generated at {time}")
DECISION_LABELS = {
    "confirmed": N_("Confirmed the transcript"),
    "objected": N_("Objected"),
    "refused": N_("Refused to sign"),
    "absent": N_("Absent"),
}

# characters XML 1.0 forbids (python-docx and the HTML parser would reject or mangle them)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# --- what both documents show ------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    clock: str
    speaker: str
    text: str
    undisputed: bool


@dataclass(frozen=True)
class _Signed:
    who: str
    decision: str
    at: str
    objection: str


@dataclass(frozen=True)
class _Page:
    """A CourtRecord translated and formatted: the strings both writers lay out."""

    lang: str
    court: str
    title: str
    facts: list[tuple[str, list[str]]]
    heading_lines: str
    lines: list[_Line]
    undisputed: str
    heading_signatures: str
    signed: list[_Signed]
    to_sign: list[str]  # who signs on a blank line (when nobody has signed off yet)
    objection: str
    signature: str
    date: str
    draft: str  # the notice at the top while not frozen, else ""
    draft_mark: str
    page_number: list[tuple[str, str | None]]  # literal text and "page"/"pages" fields
    footer_notes: list[str]  # the hash and freeze time, or the draft notice
    generated: str
    created: datetime


class _Steps:
    """Forwards fractions to ``progress`` never going back, and never past 1.0."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        if self._progress is None:
            return
        self._last = min(1.0, max(self._last, fraction))
        self._progress(self._last)


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _say(translate: Translate, msgid: str, **values: object) -> str:
    """The translation of ``msgid`` filled in; the English if the translation is broken."""
    try:
        return translate(msgid).format(**values)
    except (KeyError, IndexError, ValueError):
        return msgid.format(**values)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return ZoneInfo("UTC")


def _day(translate: Translate, moment: datetime) -> str:
    return _say(translate, DATE, year=moment.year, month=moment.month, day=moment.day)


def _when(
    translate: Translate, moment: datetime | None, zone: ZoneInfo, seconds: bool = False
) -> str:
    if moment is None:
        return ""
    local = _utc(moment).astimezone(zone)
    return f"{_day(translate, local)} {local.strftime('%H:%M:%S' if seconds else '%H:%M')}"


def _span(
    translate: Translate, start: datetime | None, end: datetime | None, zone: ZoneInfo
) -> str:
    """``2026年11月29日 09:30–10:45``; both dates when the session crossed midnight."""
    if start is None or end is None:
        return _when(translate, start or end, zone)
    first, last = _utc(start).astimezone(zone), _utc(end).astimezone(zone)
    if first.date() == last.date():
        return f"{_when(translate, first, zone)}–{last:%H:%M}"
    return f"{_when(translate, first, zone)} – {_when(translate, last, zone)}"


def _who(seat: str, name: str) -> str:
    return " ".join(part for part in (_clean(seat).strip(), _clean(name).strip()) if part)


def _page_number(translate: Translate) -> list[tuple[str, str | None]]:
    """The translated "Page {page} of {pages}" as literal pieces and field names."""
    for template in (translate(PAGE), PAGE):
        try:
            pieces = [(text, field) for text, field, _, _ in string.Formatter().parse(template)]
        except ValueError:
            continue
        if {field for _, field in pieces if field is not None} <= {"page", "pages"}:
            return pieces
    return [("", "page")]


def _decision(translate: Translate, signoff: Signoff) -> str:
    msgid = DECISION_LABELS.get(signoff.decision)
    return translate(msgid) if msgid else _clean(signoff.decision)


def _layout(record: CourtRecord, translate: Translate, steps: _Steps, share: float) -> _Page:
    """Everything the documents show; reports progress up to ``share`` line by line."""
    zone = _zone(record.timezone)
    host_seat = record.host_seat or translate(PRESIDING)
    clerk_seat = record.clerk_seat or translate(CLERK)
    facts: list[tuple[str, list[str]]] = [(translate(CASE_NUMBER), [record.case_number])]
    if record.cause.strip():
        facts.append((translate(CAUSE), [record.cause]))
    facts += [
        (translate(TIME), [_span(translate, record.started_at, record.ended_at, zone)]),
        (translate(PLACE), [record.place]),
        (host_seat, [record.host]),
        (clerk_seat, [record.clerk]),
        (
            translate(PARTICIPANTS),
            [
                _say(translate, NOTED, who=_who(p.seat, p.name), note=_clean(p.note))
                if p.note.strip()
                else _who(p.seat, p.name)
                for p in record.participants
            ],
        ),
    ]
    lines: list[_Line] = []
    total = max(1, len(record.lines))
    for i, line in enumerate(record.lines, 1):
        lines.append(
            _Line(
                clock=timestamp(line.start)[:8],
                speaker=_say(translate, SPEAKER, speaker=_who(line.seat, line.name)),
                text=_clean(line.text),
                undisputed=line.undisputed,
            )
        )
        steps(share * i / total)
    signed = [
        _Signed(
            who=_who(s.seat, s.name),
            decision=_decision(translate, s),
            at=_when(translate, s.at, zone),
            objection=_clean(s.objection).strip(),
        )
        for s in record.signoffs
    ]
    # the parties sign on blank lines until they sign off online; whoever presided and
    # the clerk always sign the paper copy
    people = [] if signed else [(p.seat, p.name) for p in record.participants]
    for seat, name in ((host_seat, record.host), (clerk_seat, record.clerk)):
        if name.strip() and all(name != known for _, known in people):
            people.append((seat, name))
    to_sign = [_who(seat, name) for seat, name in people]
    if record.frozen:
        notes = [_say(translate, HASH, hash=_clean(record.sha256))]
        if record.frozen_at is not None:
            notes.append(
                _say(translate, FROZEN_AT, time=_when(translate, record.frozen_at, zone, True))
            )
    else:
        notes = [translate(DRAFT_NOTICE)]
    return _Page(
        lang="zh-CN" if record.language.lower().startswith("zh") else _clean(record.language),
        court=_clean(record.court),
        title=_clean(record.title),
        facts=[(_clean(label), [_clean(v) for v in values]) for label, values in facts],
        heading_lines=translate(PROCEEDINGS),
        lines=lines,
        undisputed=translate(UNDISPUTED),
        heading_signatures=translate(SIGNATURES),
        signed=signed,
        to_sign=[who for who in to_sign if who],
        objection=translate(OBJECTION),
        signature=translate(SIGNATURE),
        date=translate(DATE_LABEL),
        draft="" if record.frozen else translate(DRAFT_NOTICE),
        draft_mark="" if record.frozen else translate(DRAFT),
        page_number=_page_number(translate),
        footer_notes=notes,
        generated=_say(
            translate, GENERATED_AT, time=_when(translate, record.generated_at, zone, True)
        ),
        created=_utc(record.generated_at).astimezone(UTC),
    )


# --- DOCX ----------------------------------------------------------------------------


def to_docx(record: CourtRecord, translate: Translate, progress: Progress | None = None) -> bytes:
    """The transcript as a Word document (A4), in the court's layout."""
    steps = _Steps(progress)
    page = _layout(record, translate, steps, 0.3)
    document = docx.Document()
    _docx_setup(document, page)

    _centred(document.add_paragraph(), page.court, size=16, bold=True)
    heading = document.add_heading("", level=1)
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run(heading, page.title)
    if page.draft:
        notice = document.add_paragraph()
        _centred(notice, page.draft, bold=True, color=_DRAFT_RED)
        _border(notice, "w:top", "w:bottom", "w:left", "w:right", color="A00000")

    table = document.add_table(rows=0, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for label, values in page.facts:
        cells = table.add_row().cells
        cells[0].width, cells[1].width = Mm(30), Mm(136)
        _run(cells[0].paragraphs[0], label, bold=True)
        for i, value in enumerate(values or [""]):
            _run(cells[1].paragraphs[0] if i == 0 else cells[1].add_paragraph(), value)

    _run(document.add_heading("", level=2), page.heading_lines)
    total = max(1, len(page.lines))
    append = _appender(document)
    for i, line in enumerate(page.lines, 1):
        paragraph = append()
        _run(paragraph, f"{line.clock}  ", size=8, color=_GREY)
        _run(paragraph, line.speaker, bold=True)
        _run(paragraph, line.text)
        if line.undisputed:
            _run(paragraph, f" {page.undisputed}", bold=True, size=9)
            _border(paragraph, "w:left", color="333333", size=12)
            _shade(paragraph, "EDEDED")
        steps(0.3 + 0.6 * i / total)

    append.close()
    _run(document.add_heading("", level=2), page.heading_signatures)
    for signed in page.signed:
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.keep_with_next = bool(signed.objection)
        _run(paragraph, signed.who, bold=True)
        _run(paragraph, f"　{signed.decision}")
        if signed.at:
            _run(paragraph, f"　{signed.at}", color=_GREY)
        if signed.objection:
            caption = document.add_paragraph()
            caption.paragraph_format.left_indent = Mm(8)
            caption.paragraph_format.keep_with_next = True
            _run(caption, page.objection, bold=True)
            quote = document.add_paragraph()
            quote.paragraph_format.left_indent = Mm(8)
            _run(quote, signed.objection)
            _border(quote, "w:left", color="666666", size=8)
    for who in page.to_sign:
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.space_before = Pt(10)
        _run(paragraph, f"{who}　　{page.signature}____________　　{page.date}____________")

    closing = document.add_paragraph()
    closing.paragraph_format.space_before = Pt(14)
    for i, note in enumerate([*(page.footer_notes if not page.draft else []), page.generated]):
        if i:
            closing.add_run().add_break()
        _run(closing, note, size=8, color=_GREY)

    out = io.BytesIO()
    document.save(out)
    steps(1.0)
    return out.getvalue()


class _appender:
    """Appends body paragraphs in constant time.

    ``Document.add_paragraph`` looks for the section properties at the body's end from the
    first child on, which makes thousands of lines quadratic; this takes them out,
    appends, and puts them back on ``close()``.
    """

    def __init__(self, document: DocxDocument) -> None:
        self._document = document
        self._body = document.element.body
        self._section = self._body.sectPr
        if self._section is not None:
            self._body.remove(self._section)

    def __call__(self) -> Paragraph:
        p = cast(CT_P, OxmlElement("w:p"))
        self._body.append(p)
        return Paragraph(p, self._document)

    def close(self) -> None:
        if self._section is not None:
            self._body.append(self._section)
            self._section = None


_GREY = RGBColor(0x70, 0x70, 0x70)
_DRAFT_RED = RGBColor(0xA0, 0x00, 0x00)


_FONT_SLOTS = {qn(slot): SERIF for slot in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs")}
_FONT_SLOTS[qn("w:hint")] = "eastAsia"
_THEME_FONTS = [qn(t) for t in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme")]


def _fonts(properties: CT_RPr) -> None:
    """Serif CJK for Latin and East Asian text alike, no theme fonts in the way."""
    fonts = properties.get_or_add_rFonts()
    for theme in _THEME_FONTS:
        fonts.attrib.pop(theme, None)
    fonts.attrib.update(_FONT_SLOTS)


def _run(
    paragraph: Paragraph,
    text: str,
    *,
    bold: bool = False,
    size: float | None = None,
    color: RGBColor | None = None,
) -> Run:
    run = paragraph.add_run(text)  # python-docx turns "\n" into line breaks
    _fonts(run._r.get_or_add_rPr())
    if bold:
        run.bold = True
    if size is not None:
        run.font.size = Pt(size)
    if color is not None:
        run.font.color.rgb = color
    return run


def _centred(
    paragraph: Paragraph,
    text: str,
    *,
    size: float | None = None,
    bold: bool = False,
    color: RGBColor | None = None,
) -> None:
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run(paragraph, text, size=size, bold=bold, color=color)


# w:pPr children that follow w:shd, in the schema's order (Word rejects them out of order)
_AFTER_SHADING = (
    "w:tabs", "w:suppressAutoHyphens", "w:kinsoku", "w:wordWrap", "w:overflowPunct",
    "w:topLinePunct", "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi", "w:adjustRightInd",
    "w:snapToGrid", "w:spacing", "w:ind", "w:contextualSpacing", "w:mirrorIndents",
    "w:suppressOverlap", "w:jc", "w:textDirection", "w:textAlignment", "w:textboxTightWrap",
    "w:outlineLvl", "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr", "w:pPrChange",
)  # fmt: skip


def _ppr_insert(paragraph: Paragraph, element: BaseOxmlElement, tag: str) -> None:
    successors = _AFTER_SHADING if tag == "w:shd" else ("w:shd", *_AFTER_SHADING)
    paragraph._p.get_or_add_pPr().insert_element_before(element, *successors)


def _border(paragraph: Paragraph, *sides: str, color: str, size: int = 8) -> None:
    borders = OxmlElement("w:pBdr")
    for side in sides:  # w:top, w:left, w:bottom, w:right: the schema's order
        edge = OxmlElement(side)
        edge.set(qn("w:val"), "single")
        edge.set(qn("w:sz"), str(size))
        edge.set(qn("w:space"), "4")
        edge.set(qn("w:color"), color)
        borders.append(edge)
    _ppr_insert(paragraph, borders, "w:pBdr")


def _shade(paragraph: Paragraph, fill: str) -> None:
    shade = OxmlElement("w:shd")
    shade.set(qn("w:val"), "clear")
    shade.set(qn("w:color"), "auto")
    shade.set(qn("w:fill"), fill)
    _ppr_insert(paragraph, shade, "w:shd")


def _docx_setup(document: DocxDocument, page: _Page) -> None:
    """A4, the serif CJK font throughout, plain black headings, header and footer."""
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(25), Mm(25)
    section.left_margin, section.right_margin = Mm(22), Mm(22)

    styles = document.styles
    normal = cast(ParagraphStyle, styles["Normal"])
    normal.font.size = Pt(12)
    normal.paragraph_format.space_after = Pt(4)
    normal.paragraph_format.line_spacing = 1.25
    rpr = normal.element.get_or_add_rPr()
    _fonts(rpr)
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.insert_element_before(lang, "w:eastAsianLayout", "w:specVanish", "w:oMath")
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")
    for name, size in (("Heading 1", 22.0), ("Heading 2", 14.0)):
        style = cast(ParagraphStyle, styles[name])
        _fonts(style.element.get_or_add_rPr())
        style.font.size = Pt(size)
        style.font.bold = True
        style.font.color.rgb = RGBColor(0, 0, 0)
        style.paragraph_format.space_before = Pt(12)
        style.paragraph_format.space_after = Pt(8)

    properties = document.core_properties
    properties.title = f"{page.court} {page.title}".strip()
    properties.author = page.court
    properties.last_modified_by = page.court
    properties.comments = ""
    properties.language = page.lang
    properties.created = properties.modified = page.created.replace(tzinfo=None)
    properties.revision = 1

    if page.draft_mark:
        header = section.header.paragraphs[0]
        header.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _run(header, page.draft_mark, bold=True, size=9, color=_DRAFT_RED)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for text, field in page.page_number:
        if text:
            _run(footer, text, size=9)
        if field is not None:
            _page_field(footer, "PAGE" if field == "page" else "NUMPAGES")
    for note in page.footer_notes:
        paragraph = section.footer.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _run(paragraph, note, size=7, color=_GREY)


def _page_field(paragraph: Paragraph, instruction: str) -> None:
    """A PAGE or NUMPAGES field, showing "1" until Word updates it."""
    for kind in ("begin", "instruction", "separate", "result", "end"):
        run = _run(paragraph, "1" if kind == "result" else "", size=9)
        if kind == "instruction":
            code = OxmlElement("w:instrText")
            code.set(qn("xml:space"), "preserve")
            code.text = f" {instruction} "
            run._r.append(code)
        elif kind != "result":
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._r.append(char)


# --- PDF -----------------------------------------------------------------------------

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("transcription", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def to_pdf(record: CourtRecord, translate: Translate, progress: Progress | None = None) -> bytes:
    """The transcript as a PDF (A4) with its fonts embedded as subsets."""
    try:  # loads Pango: imported here so that everything else works without it
        from weasyprint import CSS, HTML  # type: ignore[import-untyped]
        from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]
    except OSError as error:
        raise RuntimeError(
            "PDF export needs Pango (Debian: libpango-1.0-0 libpangoft2-1.0-0)"
        ) from error
    steps = _Steps(progress)
    page = _layout(record, translate, steps, 0.15)
    markup = _TEMPLATES.get_template("court_record.html").render(page=page)
    steps(0.2)
    # nothing is fetched: the document has no links, and its text is escaped
    fetcher = URLFetcher(allowed_protocols=())
    html = HTML(string=markup, base_url=None, url_fetcher=fetcher)
    sheet = (
        resources.files("transcription")
        .joinpath("templates", "court_record.css")
        .read_text("utf-8")
    )
    stylesheets = [
        CSS(string=sheet, url_fetcher=fetcher),
        CSS(string=_page_css(page), url_fetcher=fetcher),
    ]
    steps(0.25)
    rendered = html.render(stylesheets=stylesheets)
    steps(0.85)
    pdf: bytes = rendered.write_pdf()
    steps(1.0)
    return pdf


def _css_string(text: str) -> str:
    """A quoted CSS string in which nothing but letters, digits and spaces is literal."""
    return '"' + "".join(c if c.isalnum() or c == " " else f"\\{ord(c):06x}" for c in text) + '"'


def _page_css(page: _Page) -> str:
    """The margin boxes: page numbers and the hash or draft notice, the draft mark."""
    parts: list[str] = []
    for text, field in page.page_number:
        if text:
            parts.append(_css_string(text))
        if field is not None:
            parts.append(f"counter({field})")
    if page.footer_notes:
        parts.append(_css_string("\n" + "\n".join(page.footer_notes)))
    rules = f"@bottom-center {{ content: {' '.join(parts) or 'none'}; }}"
    if page.draft_mark:
        rules += f" @top-right {{ content: {_css_string(page.draft_mark)}; }}"
    return f"@page {{ {rules} }}"
