"""Court transcript documents: DOCX and PDF in the court's layout."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import docx
import pytest
from docx.oxml.ns import qn
from pypdf import PdfReader

from transcription.court_record import CourtRecord, Participant, RecordLine, Signoff
from transcription.documents import SERIF, to_docx, to_pdf

ZH = {
    "Case number": "案号",
    "Cause of action": "案由",
    "Participants": "参会人员",
    "Record of proceedings": "记录内容",
    "[Undisputed fact]": "【无争议事实】",
    "Signatures": "签名确认",
    "Objection:": "补正意见：",
    "Draft: not yet confirmed by the parties": "草稿：尚未经当事人确认",
    "{year}-{month:02d}-{day:02d}": "{year}年{month}月{day}日",
    "{speaker}:": "{speaker}：",
    "Page {page} of {pages}": "第 {page} 页 共 {pages} 页",
    "SHA-256 of the frozen transcript: {hash}": "定稿笔录 SHA-256：{hash}",
    "Confirmed the transcript": "确认无误",
    "Objected": "提出补正",
}


def zh(msgid: str) -> str:
    return ZH.get(msgid, msgid)


START = datetime(2026, 11, 29, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
HASH = "3f" * 32
OBJECTION = "第 2 行“两期”应为“三期”。\n另：付款日期为 2026年12月31日。"
LINES = [
    RecordLine(0.0, "调解员", "李明", "现在开始调解，请申请人陈述请求。"),
    RecordLine(
        12.5, "申请人", "张三", "请求被申请人支付货款五万元 <script>alert(1)</script> & 利息。"
    ),
    RecordLine(31.0, "被申请人", "Acme Ltd.", "The respondent agrees to pay in two instalments."),
    RecordLine(3725.0, "调解员", "李明", "双方对合同签订的时间均无异议。", undisputed=True),
]
PARTICIPANTS = [
    Participant("申请人", "张三"),
    Participant("被申请人", "Acme Ltd.", "委托诉讼代理人 赵六"),
    Participant("调解员", "李明"),
    Participant("书记员", "王芳"),
]
DRAFT = CourtRecord(
    court="北京市朝阳区人民法院",
    title="调解笔录",
    case_number="(2026)京0105民诉前调12345号",
    cause="买卖合同纠纷",
    started_at=START,
    ended_at=START + timedelta(minutes=75),
    place="一站式诉讼服务中心 在线调解室 3",
    host="李明",
    clerk="王芳",
    participants=PARTICIPANTS,
    lines=LINES,
    generated_at=START + timedelta(hours=5),
    host_seat="调解员",
)
FROZEN = replace(
    DRAFT,
    signoffs=[
        Signoff("张三", "申请人", "confirmed", START + timedelta(hours=2)),
        Signoff("Acme Ltd.", "被申请人", "objected", START + timedelta(hours=3), OBJECTION),
    ],
    sha256=HASH,
    frozen_at=START + timedelta(hours=4),
)


def many_lines(count: int) -> CourtRecord:
    return replace(
        DRAFT,
        lines=[
            RecordLine(
                i * 6.0, "申请人", "张三", f"第 {i} 句：我方认为合同约定的付款期限已经届满。"
            )
            for i in range(count)
        ],
    )


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def in_order(haystack: str, needles: list[str]) -> bool:
    at = 0
    for needle in needles:
        at = haystack.find(needle, at)
        if at < 0:
            return False
        at += len(needle)
    return True


# --- DOCX ----------------------------------------------------------------------------


def docx_text(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        parts += [cell.text for row in table.rows for cell in row.cells]
    return "\n".join(parts)


def test_the_docx_holds_the_court_case_participants_lines_in_order_and_the_objection() -> None:
    text = docx_text(to_docx(FROZEN, zh))
    assert "北京市朝阳区人民法院" in text and "调解笔录" in text
    assert "(2026)京0105民诉前调12345号" in text and "买卖合同纠纷" in text
    assert "2026年11月29日 09:30–10:45" in text
    for participant in PARTICIPANTS:
        assert f"{participant.seat} {participant.name}" in text
    assert "委托诉讼代理人 赵六" in text
    assert in_order(text, [f"{line.seat} {line.name}：{line.text}" for line in LINES])
    assert "01:02:05" in text  # the session clock
    assert "【无争议事实】" in text
    assert OBJECTION in text and "提出补正" in text and "确认无误" in text
    assert HASH in docx_footer(to_docx(FROZEN, zh))


def test_the_docx_sets_the_cjk_font_for_east_asian_text_on_every_run() -> None:
    document = docx.Document(io.BytesIO(to_docx(DRAFT, zh)))
    normal = document.styles["Normal"].element.rPr
    assert normal is not None and normal.rFonts is not None
    assert normal.rFonts.get(qn("w:eastAsia")) == SERIF
    runs = [run for p in document.paragraphs for run in p.runs if run.text.strip()]
    assert runs
    for run in runs:
        assert run._r.rPr is not None and run._r.rPr.rFonts is not None
        assert run._r.rPr.rFonts.get(qn("w:eastAsia")) == SERIF


def docx_footer(data: bytes) -> str:
    footer = docx.Document(io.BytesIO(data)).sections[0].footer
    return "\n".join(p.text for p in footer.paragraphs) + footer._element.xml


def test_the_docx_footer_numbers_pages_and_a_draft_says_so() -> None:
    footer = docx_footer(to_docx(DRAFT, zh))
    assert "PAGE" in footer and "NUMPAGES" in footer and "第 1 页 共 1 页" in footer
    assert "草稿：尚未经当事人确认" in footer
    assert "草稿：尚未经当事人确认" in docx_text(to_docx(DRAFT, zh))
    assert "草稿" not in docx_text(to_docx(FROZEN, zh))


def test_the_docx_keeps_markup_characters_literally() -> None:
    text = docx_text(to_docx(DRAFT, zh))
    assert "<script>alert(1)</script> & 利息" in text


def test_the_docx_reports_monotonic_progress_ending_at_one() -> None:
    seen: list[float] = []
    to_docx(many_lines(50), zh, seen.append)
    assert len(seen) > 50
    assert seen == sorted(seen) and seen[-1] == 1.0


# --- PDF -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frozen_pdf() -> PdfReader:
    return PdfReader(io.BytesIO(to_pdf(FROZEN, zh)))


@pytest.fixture(scope="module")
def draft_pdf() -> PdfReader:
    return PdfReader(io.BytesIO(to_pdf(DRAFT, zh)))


def pdf_text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_text_extracts_as_chinese_in_order(frozen_pdf: PdfReader) -> None:
    text = squeeze(pdf_text(frozen_pdf))
    assert "北京市朝阳区人民法院" in text and "调解笔录" in text
    assert "(2026)京0105民诉前调12345号" in text
    assert "2026年11月29日09:30–10:45" in text
    for participant in PARTICIPANTS:
        assert squeeze(f"{participant.seat} {participant.name}") in text
    assert in_order(text, [squeeze(f"{line.seat} {line.name}：{line.text}") for line in LINES])
    assert "【无争议事实】" in text
    assert squeeze(OBJECTION) in text
    pages = len(frozen_pdf.pages)
    assert f"第1页共{pages}页" in text and f"第{pages}页共{pages}页" in text


def fonts_of(resources: Any, seen: set[int]) -> list[Any]:
    """Every font dictionary reachable from a resource dictionary."""
    found: list[Any] = []
    if resources is None or id(resources) in seen:
        return found
    seen.add(id(resources))
    resources = resources.get_object()
    for font in (resources.get("/Font") or {}).values():
        found.append(font.get_object())
    for xobject in (resources.get("/XObject") or {}).values():
        found += fonts_of(xobject.get_object().get("/Resources"), seen)
    return found


def descriptor_of(font: Any) -> Any:
    if "/DescendantFonts" in font:
        font = font["/DescendantFonts"][0].get_object()
    return font["/FontDescriptor"].get_object()


def test_every_font_in_the_pdf_is_embedded(frozen_pdf: PdfReader) -> None:
    seen: set[int] = set()
    fonts = [f for page in frozen_pdf.pages for f in fonts_of(page.get("/Resources"), seen)]
    assert fonts
    for font in fonts:
        assert font["/Subtype"] != "/Type3"
        descriptor = descriptor_of(font)
        assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), font["/BaseFont"]
    assert any("Noto-Serif-CJK-SC" in str(font["/BaseFont"]) for font in fonts)


def test_a_frozen_pdf_shows_its_hash_and_a_draft_says_it_is_a_draft(
    frozen_pdf: PdfReader, draft_pdf: PdfReader
) -> None:
    frozen, draft = squeeze(pdf_text(frozen_pdf)), squeeze(pdf_text(draft_pdf))
    assert HASH in frozen and "草稿" not in frozen
    assert "草稿：尚未经当事人确认" in draft and HASH not in draft


def test_the_pdf_keeps_markup_characters_literally(draft_pdf: PdfReader) -> None:
    assert "<script>alert(1)</script>&利息" in squeeze(pdf_text(draft_pdf))


def test_a_long_pdf_has_more_pages_and_reports_monotonic_progress_ending_at_one(
    draft_pdf: PdfReader,
) -> None:
    seen: list[float] = []
    long = PdfReader(io.BytesIO(to_pdf(many_lines(1000), zh, seen.append)))
    assert len(long.pages) > len(draft_pdf.pages)
    assert len(seen) > 1000
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert "第999句" in squeeze(long.pages[-1].extract_text() + long.pages[-2].extract_text())


def test_an_english_reader_gets_english_labels() -> None:
    text = squeeze(docx_text(to_docx(FROZEN, lambda msgid: msgid)))
    assert "Casenumber" in text and "2026-11-2909:30–10:45" in text
    assert "Objected" in text and "Confirmedthetranscript" in text


def test_characters_xml_cannot_hold_are_dropped_rather_than_failing() -> None:
    record = replace(
        DRAFT, lines=[RecordLine(1.0, "申请人", "张三", "付款\x00日期\x0b为月底\x1f。")]
    )
    assert "付款日期为月底。" in docx_text(to_docx(record, zh))
    assert "付款日期为月底。" in squeeze(pdf_text(PdfReader(io.BytesIO(to_pdf(record, zh)))))


def test_quotes_and_braces_in_a_translation_stay_text_in_the_pdf_margins() -> None:
    def odd(msgid: str) -> str:
        return 'p. {page}/{pages} "}}" \\' if msgid == "Page {page} of {pages}" else zh(msgid)

    text = pdf_text(PdfReader(io.BytesIO(to_pdf(DRAFT, odd))))
    pages = text.count("草稿：尚未经当事人确认") - 1  # the notice on top, then one per page
    assert f'p.1/{pages}"}}"\\' in squeeze(text)
