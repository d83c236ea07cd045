"""The web app: server-rendered pages (Jinja2, autoescaped), an Atom feed and a JSON API over the
desk's database. Read-only; every text that came from a feed, an operator or a model is escaped,
and markdown is rendered with raw HTML off.

`workshop serve` runs it under uvicorn (`app_from_settings` is the factory each worker calls).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.calendar import NEW_YORK
from shared.contracts import ScoreLine, TrackRecord
from shared.db.session import session_scope
from shared.records import AgainstBaselines, baseline_lines, track_record
from shared.scoring import Scored
from shared.settings import Settings, load_settings
from workshop import render
from workshop.web import charts, reading
from workshop.web.feed import FEED_SIZE, atom
from workshop.web.schema import DispatchList, DispatchView
from workshop.web.text import markdown_html

HERE = Path(__file__).parent
MAX_PER_PAGE = 100
# No page of the desk runs a script; only the API docs page (Swagger UI, shipped in the package)
# does. A tag that slipped through escaping still could not run.
PAGE_POLICY = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters.update(
        newyork=_newyork,
        stamp=_stamp,
        number=lambda v: "–" if v is None else f"{v:,.2f}",
        pct=lambda v: "–" if v is None else f"{v:+.2f}%",
        pct0=lambda v: "–" if v is None else f"{v:.0%}",
        fixed3=lambda v: "–" if v is None else f"{v:.3f}",
        signed3=lambda v: "–" if v is None else f"{v:+.3f}",
    )
    return Jinja2Templates(env=env)


def _newyork(moment: datetime) -> str:
    local = moment.astimezone(NEW_YORK)
    return f"{local:%b %d, %Y · %H:%M} New York"


def _stamp(value: object) -> str:
    """A stored timestamp (ISO text from a JSON column, or a datetime) as short UTC text."""
    if value is None:
        return "–"
    moment = value if isinstance(value, datetime) else None
    if moment is None:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _session(request: Request) -> Iterator[Session]:
    """A read-only unit of work per request on the app's database."""
    with session_scope(request.app.state.db_url) as session:
        yield session


Db = Annotated[Session, Depends(_session)]


@dataclass(frozen=True)
class Table:
    """One scoreboard table of the track record page: the lines cut by one dimension."""

    id: str
    caption: str
    cut: str
    lines: list[ScoreLine]

    def cut_of(self, line: ScoreLine) -> str:
        return str(getattr(line, self.cut, "all"))


# The dimensions a score line can be cut by; one the contract does not have yet is skipped.
CUTS = (
    ("regime", "By regime"),
    ("kind", "By kind of call"),
    ("horizon", "By horizon"),
    ("asset_class", "By asset class"),
    ("topic", "By topic"),
)


def _dimensions(line: ScoreLine) -> list[str]:
    return [name for name, _ in CUTS if getattr(line, name, "all") != "all"]


def score_tables(record: TrackRecord) -> list[Table]:
    """The overall table, then one table per dimension with the lines cut by it alone."""
    tables = [
        Table(
            "overall",
            "Overall",
            "",
            [line for line in record.lines if not _dimensions(line)],
        )
    ]
    for name, caption in CUTS:
        lines = [line for line in record.lines if _dimensions(line) == [name]]
        if lines:
            tables.append(Table(f"by-{name}", caption, name, lines))
    return tables


def verdicts(found: list[AgainstBaselines]) -> list[str]:
    """A sentence per source saying plainly whether it beats every honest baseline: the base
    rate, the naive random walk and always the majority outcome (shared.records)."""
    out = []
    for line in found:
        head = f"{line.source}: {line.settled} settled calls"
        if line.brier is None:
            out.append(f"{head}.")
            continue
        figures = [f"Brier {line.brier:.3f}"]
        for name, skill, se in (("vs the base rate", line.skill_base, line.skill_base_se),
                                ("vs the naive random walk", line.skill_naive,
                                 line.skill_naive_se)):  # fmt: skip
            if skill is not None:
                spread = "" if se is None else f" ± {se:.3f}"
                figures.append(f"skill {name} {skill:+.3f}{spread}")
        if line.majority_brier is not None:
            figures.append(f"always the majority {line.majority_brier:.3f}")
        out.append(f"{head} ({', '.join(figures)}): {line.verdict}.")
    return out


def create_app(settings: Settings) -> FastAPI:
    """The app over the settings' database; one chart cache per process."""
    db_url = settings.db_url
    templates = _templates()
    cache = charts.ChartCache()
    app = FastAPIOffline(
        title="Workshop desk",
        description=(
            "Dispatches of an autonomous market desk, their calls' status and the scoreboard. "
            "Read-only. The schemas are the desk's wire contracts."
        ),
        version="1",
    )
    app.state.chart_cache = cache
    app.state.db_url = db_url
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def policy(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith(("/docs", "/redoc", "/static-offline-docs")):
            response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or error.status_code != 404:
            return JSONResponse({"detail": error.detail}, status_code=error.status_code)
        message = error.detail if error.detail != "Not Found" else "There is no page here."
        return templates.TemplateResponse(
            request, "404.html", {"message": message}, status_code=404
        )

    # --- pages -----------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def front(request: Request, db: Db, page: int = 1) -> Response:
        if page < 1:
            raise HTTPException(404, f"There is no page {page}.")
        listing = reading.list_dispatches(db, page)
        if page > 1 and page > listing.pages:
            raise HTTPException(404, f"There is no page {page}: the desk has {listing.pages}.")
        return templates.TemplateResponse(request, "index.html", {"listing": listing})

    @app.get("/read/{number:int}.md", response_class=PlainTextResponse, include_in_schema=False)
    def as_markdown(request: Request, number: int, db: Db) -> Response:
        view = _view(db, number)
        text = render.numbered_markdown(view, str(request.base_url))
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @app.get("/read/{number:int}", include_in_schema=False)
    def by_number(number: int, db: Db) -> Response:
        return RedirectResponse(_view(db, number).url, status_code=308)

    @app.get("/read/{number:int}/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def dispatch_page(request: Request, number: int, slug: str, db: Db) -> Response:
        view = _view(db, number, slug)
        context = {
            "view": view,
            "body_html": Markup(markdown_html(view.dispatch.body_md)),  # noqa: S704 - html off
            "debate_line": render.debate_line(view.dispatch),
            "call_words": _call_words(view),
        }
        return templates.TemplateResponse(request, "dispatch.html", context)

    @app.get(
        "/read/{number:int}/{slug}/trail", response_class=HTMLResponse, include_in_schema=False
    )
    def trail_page(request: Request, number: int, slug: str, db: Db) -> Response:
        _view(db, number, slug)
        found = reading.trail(db, number)
        assert found is not None  # the view above exists, so does its trail
        return templates.TemplateResponse(request, "trail.html", {"trail": found})

    @app.get("/track-record", response_class=HTMLResponse, include_in_schema=False)
    def record_page(request: Request, db: Db) -> Response:
        record = track_record(db, detail=True)
        version = reading.record_version(db)
        calls = reading.settled_calls(db)
        naive = any(c.naive is not None for c in calls)
        context = {
            "tables": score_tables(record),
            "verdicts": verdicts(
                baseline_lines(
                    (c.source, Scored(c.confidence, c.base_rate, c.naive, c.hit)) for c in calls
                )
            ),
            "version": "-".join(str(v) for v in version).replace(" ", "_"),
            "settled": len(calls),
            "naive_note": (
                "; dotted: a naive random walk's skill on the same calls."
                if naive
                else "; the naive random walk's line appears once calls carry its probability."
            ),
        }
        return templates.TemplateResponse(request, "record.html", context)

    @app.get("/charts/{name}.png", include_in_schema=False)
    def chart(name: str, db: Db) -> Response:
        if name not in ("calibration", "rolling"):
            raise HTTPException(404, f"There is no chart called {name}.")
        version = reading.record_version(db)

        def draw() -> bytes:
            calls = reading.settled_calls(db)
            if name == "rolling":
                return charts.rolling_png(calls)
            record = track_record(db, detail=True)
            lines = {
                line.source: line for line in record.lines if line.regime == "all"
                and line.is_overall() and not _dimensions(line)
            }  # fmt: skip
            return charts.calibration_png(calls, lines)

        png = cache.get(name, version, draw)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/feed.atom", include_in_schema=False)
    def feed(request: Request, db: Db) -> Response:
        listing = reading.list_dispatches(db, 1, FEED_SIZE)
        bodies = {}
        for item in listing.items:
            view = reading.dispatch_view(db, item.number)
            bodies[item.number] = view.dispatch.body_md if view else ""
        document = atom(str(request.base_url), [(i, bodies[i.number]) for i in listing.items])
        return Response(document, media_type="application/atom+xml; charset=utf-8")

    # --- the JSON API ----------------------------------------------------------------------------

    @app.get("/api/dispatches", tags=["dispatches"])
    def api_list(
        db: Db,
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = reading.PER_PAGE,
    ) -> DispatchList:
        """Dispatches newest first, a page at a time, each with its call's status."""
        return reading.list_dispatches(db, page, per_page)

    @app.get("/api/dispatches/{number}", tags=["dispatches"])
    def api_one(number: int, db: Db) -> DispatchView:
        """One dispatch by its permanent number: the published contract and its call's status."""
        return _view(db, number)

    @app.get("/api/scoreboard", tags=["scoreboard"])
    def api_scoreboard(db: Db) -> TrackRecord:
        """Every source's record, overall and cut by regime, kind, horizon and topic."""
        return track_record(db, detail=True)

    return app


def _view(db: Session, number: int, slug: str | None = None) -> DispatchView:
    view = reading.dispatch_view(db, number)
    if view is None:
        raise HTTPException(404, f"There is no dispatch No. {number}.")
    if slug is not None and slug != view.slug:
        raise HTTPException(404, f"Dispatch No. {number} has no page called “{slug}”.")
    return view


def _call_words(view: DispatchView) -> str:
    call = view.dispatch.prediction
    if call is None:
        return ""
    words = getattr(call, "wording", None)
    if isinstance(words, str):
        return f"“{words}”"
    side = "above" if call.direction == "up" else "below"
    return f"“{call.target} closes {side} {call.line:,.2f} in {call.horizon_hours}h”"


def app_from_settings() -> FastAPI:
    """The factory uvicorn calls in each worker: settings from the environment, as everywhere."""
    return create_app(load_settings())
