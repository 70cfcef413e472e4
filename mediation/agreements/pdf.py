"""The agreement PDF, rendered with reportlab and an embedded (subset) CJK TrueType font.

Two renderings of the same final version:
- the *unsigned* rendering: what every signer signs (its SHA-256 is in the signing payload); signature block
  with names and roles and blank lines;
- the *signed* rendering: the same pages with the signature block filled (names, times, key fingerprints) and a
  signature record page; `seal.py` then attaches the signatures and the unsigned rendering and seals it (PAdES).
Rendering is deterministic (reportlab `invariant`): the same input gives the same bytes.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

log = logging.getLogger(__name__)
FONT = "OneDoorCJK"
_font_lock = threading.Lock()
_font_source: tuple[Path, int] | None = None

ROLE_LABELS = {"party": "当事人", "agent": "委托代理人", "mediator": "调解员"}
SIDE_LABELS = {"A": "甲方", "B": "乙方"}  # one wording for the sides, as on the pages and in the templates
CLOSING = (
    "本协议经各方当事人签署、调解员签名并加盖调解组织印章（电子签章）。本协议自最后一方当事人签署之时生效。"
    "当事人应当按照约定履行。双方当事人可以自本协议生效之日起三十日内共同向有管辖权的人民法院申请司法确认"
    "（《中华人民共和国民事诉讼法》第二百零五条、《人民调解法》第三十三条）。"
)


@dataclass(frozen=True)
class SignatureLine:
    role: str  # party | agent | mediator
    name: str
    side: str = ""
    signed_at: str | None = None  # ISO time, None in the unsigned rendering
    fingerprint: str | None = None  # sha256 hex of the signer's public key (SPKI DER)
    algorithm: str | None = None


@dataclass
class PdfInput:
    case_code: str
    center_name: str
    center_fingerprint: str
    verify_url: str
    agreement_id: int
    version: int
    content: dict[str, Any]
    content_sha256: str
    signers: list[SignatureLine] = field(default_factory=list)
    unsigned_pdf_sha256: str | None = None  # set for the signed rendering
    effective_at: str | None = None
    tsa_time: str | None = None


def register_font(path: Path, index: int = 0) -> None:
    """Register the CJK font once per process (reportlab's font registry is process-global)."""
    global _font_source
    with _font_lock:
        if _font_source == (path, index):
            return
        pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=index))
        _font_source = (path, index)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=16, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=26, alignment=1, spaceAfter=6),
        "h": ParagraphStyle("h", parent=base, fontSize=12, leading=20, spaceBefore=8, spaceAfter=2),
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11, textColor=colors.HexColor("#333333")),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _qr(url: str, size: float = 28 * mm) -> Drawing:
    w = QrCodeWidget(url)
    x0, y0, x1, y1 = w.getBounds()
    d = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    d.add(w)
    return d


def describe_term(t: dict[str, Any], names: dict[Any, str], i: int) -> str:
    obligor, obligee = names.get(t.get("obligor"), "（未指定）"), names.get(t.get("obligee"), "（未指定）")
    money = f"人民币{t['amount']}元" if t.get("kind") == "payment" and t.get("amount") else ""
    return (
        f"{i}. {obligor}于{t.get('deadline') or '（未定）'}前，以{t.get('method') or '（未定）'}方式，"
        f"在{t.get('place') or '（未定）'}，向{obligee}{t.get('what') or ''}{money}。"
    )


def _party_lines(content: dict[str, Any]) -> list[str]:
    names = {p["person_id"]: p["name"] for p in content.get("parties", [])}
    out = []
    for p in content.get("parties", []):
        side = SIDE_LABELS.get(p["side"], p["side"])
        label = f"{side}当事人" if p["kind"] == "party" else f"{side}委托代理人"
        extra = f"（受{names.get(p.get('represents'), '')}委托）" if p["kind"] == "agent" else ""
        out.append(
            f"{label}{extra}：{p['name']}，身份证件号码：{p.get('id_number') or '—'}，"
            f"住所：{p.get('address') or '—'}，联系电话：{p.get('phone') or '—'}"
        )
    return out


def _story(doc: PdfInput) -> list[Any]:
    st, c = _styles(), doc.content
    names = {p["person_id"]: p["name"] for p in c.get("parties", [])}
    head = Table(
        [[[_p(c.get("title") or "人民调解协议书", st["title"]),
           _p(f"案件编号：{doc.case_code}    协议编号：{doc.agreement_id}-v{doc.version}", st["body"]),
           _p(f"调解组织：{doc.center_name}", st["body"])], _qr(doc.verify_url)]],
        colWidths=[135 * mm, 32 * mm],
    )
    story: list[Any] = [head, _p(f"核验地址：{doc.verify_url}", st["small"]), Spacer(1, 4 * mm)]
    story += [_p("当事人基本情况", st["h"])] + [_p(line, st["body"]) for line in _party_lines(c)]
    story += [_p("一、主要事实", st["h"]), _p(c.get("facts") or "", st["body"])]
    story += [_p("二、争议事项", st["h"])]
    story += [_p(f"{i}. {m}", st["body"]) for i, m in enumerate(c.get("disputed_matters") or [], 1)]
    resp = c.get("responsibility") or {}
    story += [_p("三、各方责任", st["h"]), _p(f"甲方：{resp.get('A', '')}", st["body"]),
              _p(f"乙方：{resp.get('B', '')}", st["body"])]
    story += [_p("四、协议内容", st["h"])]
    story += [_p(describe_term(t, names, i), st["body"]) for i, t in enumerate(c.get("terms") or [], 1)]
    perf = c.get("performance") or {}
    story += [_p("五、履行方式、地点和期限", st["h"]),
              _p(f"履行方式：{perf.get('method', '')}；履行地点：{perf.get('place', '')}；"
                 f"履行期限：{perf.get('deadline', '')}前。", st["body"])]
    if (c.get("other") or "").strip():
        story += [_p("六、其他约定", st["h"]), _p(c["other"], st["body"])]
    story += [Spacer(1, 3 * mm), _p(CLOSING, st["body"]), _p("签署", st["h"]), _signature_table(doc, st)]
    story += [Spacer(1, 3 * mm), _p(
        f"调解组织公钥指纹（核验时请比对）：{doc.center_fingerprint}\n协议内容 SHA-256：{doc.content_sha256}",
        st["small"])]
    if doc.unsigned_pdf_sha256:
        story += [_p("电子签名记录", st["h"]), _p(
            f"各签署人签署的协议文本（未盖章 PDF，已作为附件嵌入本文件）SHA-256：{doc.unsigned_pdf_sha256}\n"
            f"生效时间（最后一方当事人签署）：{doc.effective_at or '—'}；可信时间戳：{doc.tsa_time or '—'}\n"
            "各方签名数据见附件 signatures.json；本文件由调解组织以 PAdES 电子印章封存，任何改动均可被发现。",
            st["small"])]
    return story


def _signature_table(doc: PdfInput, st: dict[str, ParagraphStyle]) -> Table:
    rows: list[list[Any]] = [[_p(h, st["small"]) for h in ("角色", "姓名", "签署时间", "签名公钥指纹 (SHA-256)")]]
    for s in doc.signers:
        role = ROLE_LABELS.get(s.role, s.role) + (f"（{SIDE_LABELS.get(s.side, s.side)}）" if s.side else "")
        fp = s.fingerprint or "________________"
        rows.append([_p(role, st["small"]), _p(s.name, st["small"]), _p(s.signed_at or "____年__月__日", st["small"]),
                     _p(fp, st["small"])])
    t = Table(rows, colWidths=[28 * mm, 30 * mm, 42 * mm, 67 * mm])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return t


def render(doc: PdfInput, font: tuple[Path, int]) -> bytes:
    """Render the agreement. CPU-bound: call through `asyncio.to_thread` from the event loop."""
    register_font(*font)
    buf = io.BytesIO()
    pdf = SimpleDocTemplate(
        buf, pagesize=A4, invariant=1, title=f"人民调解协议书 {doc.case_code}", author=doc.center_name,
        creator="OneDoor", subject=f"agreement {doc.agreement_id} v{doc.version}",
        leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm, bottomMargin=18 * mm,
    )

    def footer(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawString(20 * mm, 10 * mm, f"{doc.case_code} · 协议 {doc.agreement_id}-v{doc.version} · 第 {canvas.getPageNumber()} 页")
        canvas.restoreState()

    pdf.build(_story(doc), onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


# ---- other documents of a case: the joint application and the court's ruling (R20, R25) ------------------------

@dataclass
class DocumentInput:
    """A plain legal document: a title block, headed sections, and small print (hashes, keys, where to verify).
    Used for the ruling (裁定书) and for a party's copy of the joint application; the agreement keeps `PdfInput`."""

    title: str
    subtitle: str
    meta: list[str]
    sections: list[tuple[str, str]]
    small_print: list[str]
    verify_url: str
    footer: str
    author: str
    subject: str
    closing: list[str] = field(default_factory=list)  # right-aligned lines: court, date


def render_document(doc: DocumentInput, font: tuple[Path, int]) -> bytes:
    """Render a `DocumentInput`. Deterministic (reportlab `invariant`); CPU-bound: use `asyncio.to_thread`."""
    register_font(*font)
    st = _styles()
    right = ParagraphStyle("right", parent=st["body"], alignment=2)
    head = Table([[[_p(doc.title, st["title"]), _p(doc.subtitle, st["title"])] + [_p(m, st["body"]) for m in doc.meta],
                   _qr(doc.verify_url)]], colWidths=[135 * mm, 32 * mm])
    story: list[Any] = [head, _p(f"核验地址：{doc.verify_url}", st["small"]), Spacer(1, 4 * mm)]
    for heading, text in doc.sections:
        story += [_p(heading, st["h"]), _p(text, st["body"])]
    story += [Spacer(1, 6 * mm)] + [_p(line, right) for line in doc.closing]
    story += [Spacer(1, 4 * mm)] + [_p(line, st["small"]) for line in doc.small_print]
    buf = io.BytesIO()
    pdf = SimpleDocTemplate(buf, pagesize=A4, invariant=1, title=f"{doc.title} {doc.subtitle}", author=doc.author,
                            creator="OneDoor", subject=doc.subject, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm)

    def footer(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawString(20 * mm, 10 * mm, f"{doc.footer} · 第 {canvas.getPageNumber()} 页")
        canvas.restoreState()

    pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
