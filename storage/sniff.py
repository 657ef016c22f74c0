"""What a file really is, from its first bytes, checked against its name's extension."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 4096


@dataclass(frozen=True)
class FileType:
    name: str
    content_type: str
    extensions: tuple[str, ...]


PDF = FileType("pdf", "application/pdf", ("pdf",))
JPEG = FileType("jpeg", "image/jpeg", ("jpg", "jpeg"))
PNG = FileType("png", "image/png", ("png",))
DOCX = FileType(
    "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",)
)
MP3 = FileType("mp3", "audio/mpeg", ("mp3",))
M4A = FileType("m4a", "audio/mp4", ("m4a",))
WAV = FileType("wav", "audio/wav", ("wav",))
MP4 = FileType("mp4", "video/mp4", ("mp4",))
WEBM = FileType("webm", "video/webm", ("webm",))
TXT = FileType("txt", "text/plain; charset=utf-8", ("txt",))
ALL = (PDF, JPEG, PNG, DOCX, MP3, M4A, WAV, MP4, WEBM, TXT)


class UnsupportedType(ValueError):
    """The content is not one of the accepted types, or does not match its extension."""


def extension_of(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def _is_docx(head: bytes, whole: bytes | Path | None) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    if whole is not None:
        try:
            with zipfile.ZipFile(
                io.BytesIO(whole) if isinstance(whole, bytes) else whole
            ) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return False
        return "word/document.xml" in names and "[Content_Types].xml" in names
    # only the head is at hand: the first entry of a Word file is one of these
    return b"[Content_Types].xml" in head[:200] or b"word/" in head[:200] or b"_rels/" in head[:200]


def _detect(head: bytes, whole: bytes | Path | None) -> FileType | None:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if _is_docx(head, whole):
        return DOCX
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return M4A if brand in (b"M4A ", b"M4B ") else MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return WEBM if b"webm" in head[:64] else None
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a cut multi-byte character at the end is fine
                return None
        return TXT
    return None


def identify(filename: str, head: bytes, whole: bytes | Path | None = None) -> FileType:
    """The type of a file named ``filename`` that begins with ``head``.

    ``whole`` (the bytes or the file) lets a Word file be checked by its zip directory.
    """
    detected = _detect(head[:HEAD_BYTES], whole)
    if detected is None:
        raise UnsupportedType("the content is not an accepted type")
    extension = extension_of(filename)
    matching = detected.extensions
    if detected is MP4 and extension == "m4a":
        return M4A  # some encoders write an mp4 brand into audio-only files
    if extension not in matching:
        raise UnsupportedType(f"the content is {detected.name}, but the name ends in .{extension}")
    return detected
