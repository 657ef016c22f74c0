"""What the court's documents cost to make, against rendering a blank PDF.

    .venv/bin/python -m bench.documents [--repeat 7]

All in this process, each step repeated and its median taken, runs of the steps
interleaved (these machines are shared and noisy):

- blank: an empty A4 page through server/pdf.py (WeasyPrint, fonts set up);
- agreement: the platform's loan template filled with sample facts and terms, laid out
  as an agreement put up for signing (server/services/agreements.layout) and rendered;
- agreement signed: that PDF with the platform's PAdES certification signature
  (server/signing/issue.certify; the key is made once, before timing);
- certificate: a service certificate (电子送达凭证) of a service by inbox and email with
  one failed try, rendered (server/services/service_certificate.certificate_markup) and
  certified the same way.

Each is printed as seconds and as a multiple of the blank page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.config import load_settings
from server.db.models import (
    AgreementVersion,
    Court,
    Dispute,
    Document,
    Service,
    ServiceDelivery,
    StoredObject,
)
from server.pdf import render_pdf
from server.services import agreement_templates as templates
from server.services import agreements, e_service
from server.services.service_certificate import CSS, certificate_markup
from server.signing import keys
from server.signing.issue import certify


def sample_version() -> AgreementVersion:
    filled = templates.fill(
        templates.compile_body(templates.platform_body("loan")),
        templates.SAMPLE_FACTS,
        templates.SAMPLE_TERMS,
        message=templates.SAMPLE_ERROR,
    )
    terms = {**templates.SAMPLE_TERMS, "title": filled.title}
    return AgreementVersion(
        version=3,
        text=filled.text,
        terms=agreements.json.dumps(terms, ensure_ascii=False),
        sha256=agreements.version_hash(filled.text, terms),
    )


def sample_trace() -> e_service.Trace:
    now = datetime.now(UTC)
    service = Service(
        id=1,
        dispute_id=1,
        document_id=1,
        recipient_name="张三",
        state="complete",
        effective_channel="inbox",
        effective_at=now,
        created_at=now - timedelta(minutes=5),
    )
    dispute = Dispute(id=1, number="（2026）演0101诉前调1号", dispute_type="loan", status="served")
    document = Document(id=1, dispute_id=1, kind="ruling", title="民事裁定书", filename="r.pdf")
    stored = StoredObject(key="ruling/x.pdf", kind="ruling", size=90_000, sha256="ab" * 32)
    deliveries = [
        ServiceDelivery(
            id=1,
            channel="inbox",
            state="reached",
            attempts=1,
            sent_at=now,
            reached_at=now,
            opened_at=now + timedelta(minutes=2),
            downloaded_at=now + timedelta(minutes=3),
            acknowledged_at=now + timedelta(minutes=4),
        ),
        ServiceDelivery(
            id=2,
            channel="email",
            address="zhangsan@example.invalid",
            state="reached",
            attempts=2,
            sent_at=now + timedelta(minutes=1),
            reached_at=now + timedelta(minutes=1),
            last_error="connection refused",
        ),
    ]
    history = [
        e_service.Step(
            at=now, action="service.delivery_failed", channel="email", delivery_id=2,
            attempt=1, error="connection refused",
            next_attempt_at=(now + timedelta(minutes=1)).isoformat(), actor="",
        )
    ]  # fmt: skip
    court = Court(id=1, name="演示市第一人民法院", code="演0101")
    return e_service.Trace(service, dispute, court, document, stored, deliveries, history)


def timed(step: Callable[[], object]) -> float:
    began = time.perf_counter()
    step()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7, help="runs of each step")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    settings = load_settings(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")},
            "YIZHAN_DATA_DIR": str(folder),
            "YIZHAN_SECRET_KEY": "b" * 40,
        }
    )
    keys.platform_key(settings)  # made once, as on a server's first signature
    facts, version = templates.SAMPLE_FACTS, sample_version()
    markup, css = agreements.layout(facts, version, draft=False)
    trace = sample_trace()

    def certificate() -> bytes:
        html = certificate_markup(
            trace, timezone="Asia/Shanghai", locale="zh_CN", version=1, made_at=datetime.now(UTC)
        )
        return certify(settings, render_pdf(html, [CSS]))

    steps: dict[str, Callable[[], object]] = {
        "blank": lambda: render_pdf("<p></p>"),
        "agreement": lambda: render_pdf(markup, [css]),
        "agreement signed": lambda: certify(settings, render_pdf(markup, [css])),
        "certificate": certificate,
    }
    for step in steps.values():  # warm: fonts, templates, imports
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeat):
        for name, step in steps.items():
            times[name].append(timed(step))
    blank = statistics.median(times["blank"])
    pages = len(render_pdf(markup, [css]))
    print(f"medians of {args.repeat} runs (agreement PDF {pages // 1024} KB):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<17} {median:6.3f} s  {median / blank:5.1f}x the blank page")
    signing = statistics.median(times["agreement signed"]) - statistics.median(times["agreement"])
    print(f"  the PAdES signature alone: about {signing * 1000:.0f} ms")


if __name__ == "__main__":
    main()
