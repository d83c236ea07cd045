"""Recent SEC EDGAR filings of the watched names: 8-K with its items, Form 4 with the insider trade.

The SEC requires a User-Agent naming a contact and at most 10 requests a second. A filing that
does not parse is a flag with the reason; the filing itself is still listed.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog

from shared.calendar import NEW_YORK
from shared.contracts import DataFlag, FeedHealth, Filing, HealthStatus, SourceResult
from shared.errors import BadInputError, ConfigurationError, WorkshopError
from shared.market.live.health import (
    Deadline,
    RateLimiter,
    bounded,
    error_result,
    get_with_backoff,
    unique_flags,
)

log = structlog.get_logger(__name__)

WWW_BASE = "https://www.sec.gov"
DATA_BASE = "https://data.sec.gov"
FORMS = frozenset({"8-K", "8-K/A", "4", "4/A"})
FORM4 = frozenset({"4", "4/A"})
MAX_REQUESTS_PER_SECOND = 10.0
# The ticker map changes a few times a year; one download a day is plenty.
TICKER_MAP_TTL_S = 24 * 3600.0
ITEM_NAMES = {
    "1.01": "material agreement",
    "1.05": "cybersecurity incident",
    "2.01": "acquisition or disposition",
    "2.02": "results of operations",
    "2.03": "new obligation",
    "2.05": "exit costs",
    "2.06": "impairment",
    "3.01": "listing notice",
    "4.02": "non-reliance on financials",
    "5.02": "officer or director change",
    "5.07": "shareholder vote",
    "7.01": "Regulation FD",
    "8.01": "other events",
    "9.01": "exhibits",
}


@dataclass(frozen=True)
class InsiderTrade:
    """The gist of a Form 4: who, what kind of trade, how many shares, for how much."""

    insider: str | None
    code: str | None
    shares: float | None
    value: float | None
    summary: str


def files_with_sec(symbol: str) -> bool:
    """Indices (^VIX), crypto pairs (BTC-USD), futures and currencies (CL=F) file nothing."""
    return not symbol.startswith("^") and not symbol.upper().endswith("-USD") and "=" not in symbol


def _text(node: ET.Element | None, path: str) -> str | None:
    found = node.find(path) if node is not None else None
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _number(text: str | None, what: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        raise BadInputError(f"{what} is not a number: {text[:40]!r}") from None


def parse_form4(document: bytes) -> InsiderTrade:
    """The insider trade in a Form 4 ownership XML document.

    Raises: BadInputError when the document is not a readable ownership document.
    """
    head = document[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in head:
        # Ownership documents have no DTD; one here can only be an entity-expansion trick.
        raise BadInputError("document declares a DTD or entities")
    try:
        root = ET.fromstring(document)  # noqa: S314 - no DTD (checked above), expat >= 2.4
    except ET.ParseError as exc:
        raise BadInputError(f"not well-formed XML: {exc}") from None
    if root.tag != "ownershipDocument":
        raise BadInputError(f"root element is {root.tag[:40]!r}, not ownershipDocument")
    owners = [
        name
        for owner in root.findall("reportingOwner")
        if (name := _text(owner, "reportingOwnerId/rptOwnerName"))
    ]
    insider = "; ".join(owners)[:200] or None
    trades: list[tuple[str, float, float | None]] = []
    for tx in root.findall("nonDerivativeTable/nonDerivativeTransaction"):
        code = _text(tx, "transactionCoding/transactionCode")
        shares = _number(_text(tx, "transactionAmounts/transactionShares/value"), "shares")
        price = _number(_text(tx, "transactionAmounts/transactionPricePerShare/value"), "price")
        if code is None or shares is None:
            raise BadInputError("a transaction without a code or a share count")
        if shares < 0 or (price is not None and price < 0):
            raise BadInputError(f"negative shares or price in a {code} transaction")
        trades.append((code[:4], shares, price))
    if not trades:
        return InsiderTrade(insider, None, None, None, "no non-derivative transaction")
    by_code: dict[str, list[tuple[float, float | None]]] = {}
    for code, shares, price in trades:
        by_code.setdefault(code, []).append((shares, price))
    # The trade that matters most is the code with the most shares (an S over a tax withholding F).
    code = max(by_code, key=lambda c: sum(s for s, _ in by_code[c]))
    shares = sum(s for s, _ in by_code[code])
    priced = [s * p for s, p in by_code[code] if p is not None]
    value = round(sum(priced), 2) if len(priced) == len(by_code[code]) else None
    parts = [f"{c} {sum(s for s, _ in rows):,.0f} sh" for c, rows in by_code.items()]
    summary = f"{insider or 'unnamed insider'}: " + ", ".join(parts)
    if value is not None:
        summary += f"; {code} value ${value:,.0f}"
    return InsiderTrade(insider, code, shares, value, summary[:2000])


def _accepted(text: str) -> datetime:
    """EDGAR's acceptanceDateTime, read as New York wall time.

    The submissions JSON ends it in 'Z' but for some filers it is the New York clock. Reading the
    wall time as New York is right for those and hours late (never early) for the others, so a
    filing can never enter a snapshot before it was public.
    """
    naive = datetime.fromisoformat(text.replace("Z", "").split(".")[0])
    return naive.replace(tzinfo=NEW_YORK).astimezone(UTC)


class EdgarFilings:
    """The `filings` source: 8-K and Form 4 filings of the watched names in a recent window."""

    name = "filings"

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        user_agent: str | None,
        timeout_s: float = 20.0,
        base_url: str | None = None,
        lookback_days: int = 7,
        form4_per_ticker: int = 5,
        attempts: int = 3,
        backoff_s: float = 1.0,
        requests_per_second: float = MAX_REQUESTS_PER_SECOND,
    ) -> None:
        """Raises: ConfigurationError when user_agent (setting sec_user_agent) is missing."""
        if not user_agent or not user_agent.strip():
            raise ConfigurationError(
                "the SEC requires a contact in the User-Agent: set sec_user_agent "
                "(WORKSHOP_SEC_USER_AGENT), e.g. 'Desk ops ops@example.com'"
            )
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols if files_with_sec(s)))
        self.user_agent = user_agent.strip()
        self.timeout_s = timeout_s
        self.www_base = (base_url or WWW_BASE).rstrip("/")
        self.data_base = (base_url or DATA_BASE).rstrip("/")
        self.lookback = timedelta(days=lookback_days)
        self.form4_per_ticker = form4_per_ticker
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._limiter = RateLimiter(min(requests_per_second, MAX_REQUESTS_PER_SECOND))
        self._ciks: dict[str, int] = {}
        self._ciks_at = -TICKER_MAP_TTL_S

    def fetch(self, as_of: datetime) -> SourceResult:
        """Filings accepted in the window ending at as_of; never raises for a dead feed."""
        return bounded(self.name, self.timeout_s, lambda: self._fetch(as_of))

    def _get(self, client: httpx.Client, url: str, deadline: Deadline) -> httpx.Response:
        return get_with_backoff(
            client,
            url,
            deadline=deadline,
            attempts=self.attempts,
            backoff_s=self.backoff_s,
            before_request=self._limiter.wait,
        )

    def _fetch(self, as_of: datetime) -> SourceResult:
        deadline = Deadline(self.timeout_s)
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
        filings: list[Filing] = []
        flags: list[DataFlag] = []
        failed: list[str] = []
        unparsed = 0
        with httpx.Client(headers=headers, follow_redirects=True) as client:
            try:
                ciks = self._ticker_map(client, deadline)
            except (WorkshopError, ValueError, KeyError, TypeError) as exc:
                detail = f"ticker map: {type(exc).__name__}: {exc}"[:300]
                return error_result(self.name, detail)
            for symbol in self.symbols:
                cik = ciks.get(symbol)
                if cik is None:
                    flags.append(DataFlag(code="no_cik", subject=symbol, detail="not in SEC map"))
                    continue
                try:
                    found = self._recent(client, symbol, cik, as_of, deadline)
                except (WorkshopError, ValueError, KeyError, TypeError, IndexError) as exc:
                    failed.append(symbol)
                    flags.append(
                        DataFlag(
                            code="feed_error",
                            subject=f"{symbol} submissions",
                            detail=f"{type(exc).__name__}: {exc}"[:300],
                        )
                    )
                    continue
                for filing, flag in self._with_trades(client, found, deadline):
                    filings.append(filing)
                    if flag is not None:
                        unparsed += 1
                        flags.append(flag)
        status: HealthStatus = "ok"
        if failed and len(failed) == len([s for s in self.symbols if s in ciks]):
            status = "error"
        elif failed or unparsed:
            status = "partial"
        detail = f"{len(filings)} filings from {len(self.symbols) - len(failed)} names"
        if failed:
            detail += f"; failed {', '.join(failed)}"
        if unparsed:
            detail += f"; {unparsed} filings unparsed"
        filings.sort(key=lambda f: f.filed_at, reverse=True)
        health = FeedHealth(
            source=self.name,
            status=status,
            detail=detail[:500],
            items=len(filings),
            newest_at=max((f.filed_at for f in filings), default=None),
        )
        return SourceResult(
            source=self.name, health=health, filings=tuple(filings), flags=unique_flags(flags)
        )

    def _ticker_map(self, client: httpx.Client, deadline: Deadline) -> dict[str, int]:
        if self._ciks and time.monotonic() - self._ciks_at < TICKER_MAP_TTL_S:
            return self._ciks
        payload = self._get(client, f"{self.www_base}/files/company_tickers.json", deadline).json()
        if not isinstance(payload, dict) or not payload:
            raise BadInputError("company_tickers.json is not a non-empty object")
        ciks = {str(row["ticker"]).upper(): int(row["cik_str"]) for row in payload.values()}
        self._ciks, self._ciks_at = ciks, time.monotonic()
        return ciks

    def _recent(
        self, client: httpx.Client, symbol: str, cik: int, as_of: datetime, deadline: Deadline
    ) -> list[Filing]:
        url = f"{self.data_base}/submissions/CIK{cik:010d}.json"
        recent = self._get(client, url, deadline).json()["filings"]["recent"]
        forms = recent["form"]
        columns = ("accessionNumber", "acceptanceDateTime", "primaryDocument")
        if any(len(recent[c]) != len(forms) for c in columns):
            raise BadInputError("filings.recent arrays differ in length")
        items_column = recent.get("items") or [""] * len(forms)
        found: list[Filing] = []
        for i, form in enumerate(forms):
            if form not in FORMS:
                continue
            filed_at = _accepted(recent["acceptanceDateTime"][i])
            if not as_of - self.lookback < filed_at <= as_of:
                continue
            accession = str(recent["accessionNumber"][i])
            document = str(recent["primaryDocument"][i])
            if form in FORM4:
                # primaryDocument points at the XSL rendering; the XML sits beside the folder.
                document = document.rsplit("/", 1)[-1]
            folder = f"{self.www_base}/Archives/edgar/data/{cik}/{accession.replace('-', '')}"
            items = tuple(x.strip() for x in str(items_column[i] or "").split(",") if x.strip())
            summary = ""
            if items:
                summary = "8-K: " + ", ".join(f"{x} {ITEM_NAMES.get(x, '')}".strip() for x in items)
            found.append(
                Filing(
                    ticker=symbol,
                    form=form,
                    filed_at=filed_at,
                    cik=f"{cik:010d}",
                    items=items,
                    url=f"{folder}/{document}",
                    summary=summary,
                )
            )
        return found

    def _with_trades(
        self, client: httpx.Client, filings: list[Filing], deadline: Deadline
    ) -> list[tuple[Filing, DataFlag | None]]:
        """Each filing, Form 4s with their trade read from the XML (the newest few per name)."""
        out: list[tuple[Filing, DataFlag | None]] = []
        form4s = 0
        for filing in sorted(filings, key=lambda f: f.filed_at, reverse=True):
            if filing.form not in FORM4:
                out.append((filing, None))
                continue
            form4s += 1
            if form4s > self.form4_per_ticker:
                out.append((filing, None))
                continue
            try:
                trade = parse_form4(self._get(client, filing.url, deadline).content)
            except WorkshopError as exc:
                subject = f"{filing.ticker} {filing.form} {filing.filed_at:%Y-%m-%d}"
                flag = DataFlag(code="filing_unparsed", subject=subject, detail=str(exc)[:300])
                out.append((filing.model_copy(update={"summary": "unreadable Form 4"}), flag))
                continue
            update = {
                "insider": trade.insider,
                "transaction_code": trade.code,
                "shares": trade.shares,
                "value": trade.value,
                "summary": trade.summary,
            }
            out.append((filing.model_copy(update=update), None))
        return out
