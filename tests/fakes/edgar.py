"""SEC EDGAR as its clients see it: the ticker map, submissions JSON and Form 4 ownership XML."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from tests.fakes.http import FakeServer, Reply, Request

TICKERS = "/files/company_tickers.json"


@dataclass(frozen=True)
class Submission:
    """One row of filings.recent; accepted is EDGAR's text, e.g. '2026-01-08T16:30:31.000Z'."""

    form: str
    accession: str
    accepted: str
    primary_document: str
    items: str = ""


def company_tickers(ciks: dict[str, int]) -> str:
    rows = {
        str(i): {"cik_str": cik, "ticker": ticker, "title": f"{ticker} Inc."}
        for i, (ticker, cik) in enumerate(ciks.items())
    }
    return json.dumps(rows)


def submissions_json(cik: int, ticker: str, rows: Sequence[Submission]) -> str:
    recent = {
        "accessionNumber": [r.accession for r in rows],
        "filingDate": [r.accepted[:10] for r in rows],
        "reportDate": ["" for _ in rows],
        "acceptanceDateTime": [r.accepted for r in rows],
        "act": ["34" for _ in rows],
        "form": [r.form for r in rows],
        "fileNumber": ["" for _ in rows],
        "filmNumber": ["" for _ in rows],
        "items": [r.items for r in rows],
        "size": [1000 for _ in rows],
        "isXBRL": [0 for _ in rows],
        "isInlineXBRL": [0 for _ in rows],
        "primaryDocument": [r.primary_document for r in rows],
        "primaryDocDescription": [r.form for r in rows],
    }
    return json.dumps(
        {
            "cik": str(cik),
            "entityType": "operating",
            "name": f"{ticker} Inc.",
            "tickers": [ticker],
            "filings": {"recent": recent, "files": []},
        }
    )


def form4_xml(
    owner: str, transactions: Sequence[tuple[str, str, str | None]], *, symbol: str = "AAPL"
) -> str:
    """An ownership document; each transaction is (code, shares text, price text or None)."""
    rows = []
    for code, shares, price in transactions:
        price_xml = (
            f"<transactionPricePerShare><value>{escape(price)}</value></transactionPricePerShare>"
            if price is not None
            else '<transactionPricePerShare><footnoteId id="F1"/></transactionPricePerShare>'
        )
        rows.append(
            "<nonDerivativeTransaction><securityTitle><value>Common Stock</value></securityTitle>"
            "<transactionDate><value>2026-01-07</value></transactionDate>"
            f"<transactionCoding><transactionFormType>4</transactionFormType>"
            f"<transactionCode>{escape(code)}</transactionCode>"
            "<equitySwapInvolved>0</equitySwapInvolved></transactionCoding>"
            f"<transactionAmounts><transactionShares><value>{escape(shares)}</value>"
            f"</transactionShares>{price_xml}<transactionAcquiredDisposedCode><value>D</value>"
            "</transactionAcquiredDisposedCode></transactionAmounts></nonDerivativeTransaction>"
        )
    return (
        '<?xml version="1.0"?>\n<ownershipDocument><schemaVersion>X0508</schemaVersion>'
        "<documentType>4</documentType><periodOfReport>2026-01-07</periodOfReport>"
        f"<issuer><issuerCik>0000320193</issuerCik><issuerName>Issuer</issuerName>"
        f"<issuerTradingSymbol>{symbol}</issuerTradingSymbol></issuer>"
        "<reportingOwner><reportingOwnerId><rptOwnerCik>0001214156</rptOwnerCik>"
        f"<rptOwnerName>{escape(owner)}</rptOwnerName></reportingOwnerId></reportingOwner>"
        f"<nonDerivativeTable>{''.join(rows)}</nonDerivativeTable></ownershipDocument>\n"
    )


def install_edgar(
    fake: FakeServer,
    ciks: dict[str, int],
    submissions: dict[int, Sequence[Submission]],
    documents: dict[str, Reply] | None = None,
) -> None:
    """Answer the ticker map, submissions per CIK, and documents by their Archives path.

    Every answer requires a User-Agent, like the SEC (which answers 403 without one).
    """
    documents = documents or {}
    names = {cik: ticker for ticker, cik in ciks.items()}

    def guarded(request: Request, reply: Reply) -> Reply:
        if "user-agent" not in request.headers or "@" not in request.headers["user-agent"]:
            return Reply(status=403, body="<html>Undeclared Automated Tool</html>")
        return reply

    def tickers(request: Request) -> Reply:
        return guarded(request, Reply(body=company_tickers(ciks)))

    def submission(request: Request) -> Reply:
        cik = int(request.path.rsplit("CIK", 1)[-1].removesuffix(".json"))
        if cik not in submissions:
            return guarded(request, Reply(status=404, body="{}"))
        body = submissions_json(cik, names.get(cik, "X"), submissions[cik])
        return guarded(request, Reply(body=body))

    def archive(request: Request) -> Reply:
        reply = documents.get(request.path, Reply(status=404, body="not found"))
        return guarded(request, reply)

    fake.handle(TICKERS, tickers)
    fake.handle("/submissions/", submission)
    fake.handle("/Archives/edgar/data/", archive)
