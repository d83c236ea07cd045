"""The desk in a browser: a real replay through the fleet fills the database, `workshop serve`
serves it on loopback under uvicorn, and a real headless Chromium (Debian's, driven by
Playwright) reads it as a person would. Screenshots of each page land in reports/web/."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright
from rich.console import Console
from sqlalchemy import select

from shared.contracts import Dispatch, OperatorNote, TrackRecord
from shared.db.models import DispatchRecord
from shared.db.session import session_scope
from shared.market.replay import sample_data_dir
from tests.integration.conftest import start_fleet
from workshop import driver, render, stack
from workshop.web.schema import DispatchList, DispatchView

# The module's first test also waits for the replay that fills the database (slow on a busy
# machine); the tests themselves take seconds.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SCRIPT = "<script>window.__pwned = 1</script>"
START, END = date(2015, 5, 8), date(2015, 7, 10)
NOTE_AT = datetime(2015, 6, 1, 12, 0, tzinfo=UTC)
HEADLINE_AT = datetime(2015, 6, 1, 14, 0, tzinfo=UTC)
ARTIFACTS = Path(__file__).resolve().parents[2] / "reports" / "web"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@dataclass(frozen=True)
class Desk:
    url: str
    db_url: str
    home: Path

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)


def _replay_dir(folder: Path) -> Path:
    """The shipped replay data plus a news file whose one headline carries a script tag."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("prices.csv", "macro.csv"):
        shutil.copy(sample_data_dir() / name, folder / name)
    with (folder / "news.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["published_at", "source", "title", "summary", "url"])
        writer.writerow(
            [HEADLINE_AT.isoformat(), "wire", f"Stocks slip {SCRIPT} as Fed nears", "", ""]
        )
    return folder


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Desk]:
    """A database filled by a real replay through the fleet, served by `workshop serve`."""
    data = _replay_dir(tmp_path_factory.mktemp("replay-web"))
    fleet_run = start_fleet(tmp_path_factory, redis_port)
    fleet = next(fleet_run)
    try:
        note = OperatorNote(author="ops", posted_at=NOTE_AT, text=f"{SCRIPT} mind the Fed")
        driver.post_note(fleet.app, note)
        steps = list(driver.replay(fleet.app, fleet.db_url, data, START, END, timeout=120))
        assert len(steps) > 40
    finally:
        next(fleet_run, None)  # stops the fleet: the web app needs only the database
    port = stack.free_port()
    env = {
        **os.environ,
        "WORKSHOP_DATABASE_URL": fleet.db_url,
        "WORKSHOP_HOME": str(fleet.home),
        "WORKSHOP_LOG_FORMAT": "json",
    }
    log = fleet.home / "logs" / "web.log"
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "workshop.cli", "serve", "--port", str(port), "--workers", "2"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        stack.wait_for_port(port, server.pid, log, timeout=120)
        yield Desk(f"http://127.0.0.1:{port}", fleet.db_url, fleet.home)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is not installed: scripts/test.sh installs it")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Reader:
    """A browser tab that remembers every request it made off loopback."""

    page: Page
    outside: list[str]

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def reader(browser: Browser) -> Iterator[Reader]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    outside: list[str] = []

    def note(request: Request) -> None:
        if not re.match(r"^(https?://127\.0\.0\.1[:/]|data:|about:)", request.url):
            outside.append(request.url)

    page.on("request", note)
    try:
        yield Reader(page, outside)
    finally:
        context.close()


def _rows(db_url: str) -> list[DispatchRecord]:
    """Every dispatch, newest first, as the database holds them."""
    with session_scope(db_url) as session:
        return list(
            session.scalars(
                select(DispatchRecord).order_by(
                    DispatchRecord.as_of.desc(), DispatchRecord.id.desc()
                )
            )
        )


def test_front_page_lists_newest_dispatches_first_with_their_status(
    desk: Desk, reader: Reader
) -> None:
    """The front page shows the 20 newest dispatches, newest first, each with title and status."""
    rows = _rows(desk.db_url)
    page = reader.page
    page.goto(desk.url + "/")
    items = page.locator(".dispatch-item")
    assert items.count() == 20
    shown = [int(n) for n in items.evaluate_all("els => els.map(e => e.dataset.number)")]
    assert shown == [r.id for r in rows[:20]]
    first = items.first
    assert first.locator("h2").inner_text() == rows[0].title
    status = first.locator(".status").inner_text()
    if rows[0].abstained:
        assert status == "No call"
    else:
        assert status.split()[0] in ("Open", "Hit", "Miss", "Inconclusive")
    assert f"{len(rows)} dispatches, newest first" in page.locator(".lede").inner_text()
    reader.shot("front")
    assert reader.outside == []


def test_reader_follows_a_dispatch_its_trail_and_older_newer(desk: Desk, reader: Reader) -> None:
    """From the front page a reader opens a dispatch, its trail, and steps older and newer."""
    rows = _rows(desk.db_url)
    newest, older = rows[0], rows[1]
    page = reader.page
    page.goto(desk.url + "/")
    page.locator(".dispatch-item h2 a").first.click()
    page.wait_for_load_state()
    assert re.search(rf"/read/{newest.id}/[a-z0-9-]+$", page.url)
    assert page.locator("h1.dispatch-title").inner_text() == newest.title
    dispatch = Dispatch.model_validate(newest.payload)
    box = page.locator("section.callbox").inner_text()
    if dispatch.prediction is None:
        assert "No call this cycle." in box
        assert (dispatch.abstention or "")[:60] in box
    assert f"Cycle {dispatch.cycle_number}" in (page.locator(".meta").first.text_content() or "")
    debate = page.locator("p.debate").inner_text()
    assert debate.startswith(f"Debate: {dispatch.debate} | Conviction: {dispatch.conviction:.0%}")
    for mind in dispatch.minds:
        assert f"{mind.mind.title()}: {mind.confidence:.0%}" in debate
    assert "Macro Mind" in page.locator("div.body").inner_text()
    assert page.locator("a.newer").count() == 0  # the newest has nothing newer
    reader.shot("dispatch")

    page.get_by_text("see the trail →").click()
    page.wait_for_load_state()
    assert page.url.endswith("/trail")
    trail = page.locator("main").inner_text()
    for section in ("Inputs", "The minds", "Rules that applied", "Stories it touched",
                    "Lessons it recalled", "What it taught, after settlement"):  # fmt: skip
        assert section in trail
    assert "replay.prices" in page.locator("table.grid").first.inner_text()
    assert "^GSPC" in trail
    minds = page.locator("div.mind h3").all_inner_texts()
    assert [m.split()[0] for m in minds] == [m.mind.capitalize() for m in dispatch.minds]
    reader.shot("trail")

    page.go_back()
    page.locator("a.older").click()
    page.wait_for_load_state()
    assert re.search(rf"/read/{older.id}/[a-z0-9-]+$", page.url)
    assert page.locator("h1.dispatch-title").inner_text() == older.title
    page.locator("a.newer").click()
    page.wait_for_load_state()
    assert re.search(rf"/read/{newest.id}/", page.url)
    assert reader.outside == []


def test_trail_of_a_settled_cycle_shows_its_lessons(desk: Desk, reader: Reader) -> None:
    """A cycle whose minds' calls settled shows the lessons written about them on its trail."""
    row = _rows(desk.db_url)[10]
    reader.page.goto(f"{desk.url}/read/{row.id}")
    reader.page.get_by_text("see the trail →").click()
    reader.page.wait_for_load_state()
    lessons = reader.page.locator("#lessons li").all_inner_texts()
    assert lessons, "a cycle ten sessions old has settled calls, so lessons"
    assert all("Rested on:" in text and "What happened:" in text for text in lessons)


def test_track_record_shows_the_scoreboard_and_its_plots(desk: Desk, reader: Reader) -> None:
    """The track record page shows each source's settled record and two drawn plots."""
    board = driver.record(desk.db_url)
    page = reader.page
    page.goto(desk.url + "/track-record")
    overall = page.locator("table#overall tbody tr").all_inner_texts()
    for source in ("macro", "flow"):
        line = board.line(source)
        assert line is not None
        assert line.settled > 0
        row = next(r for r in overall if r.split()[0] == source)
        assert row.split()[1:3] == [str(line.calls), str(line.hits)]
    for image in page.locator("figure img").all():
        assert image.evaluate("img => img.complete && img.naturalWidth > 300")
    assert page.locator("table#by-regime").count() == 1
    verdicts = page.locator("ul.verdicts li").all_inner_texts()
    assert any(v.startswith("macro: ") for v in verdicts)
    assert all(
        "no edge shown" in v or "an edge over every baseline" in v or "too few settled" in v
        for v in verdicts
    )
    assert any("naive random walk" in v for v in verdicts)
    reader.shot("track-record")
    assert reader.outside == []


def test_front_page_pages_older_and_back(desk: Desk, reader: Reader) -> None:
    """ "Older →" on the front page shows the next 20 dispatches; a page past the end is a 404."""
    rows = _rows(desk.db_url)
    page = reader.page
    page.goto(desk.url + "/")
    page.get_by_text("Older →").click()
    page.wait_for_load_state()
    assert page.url.endswith("/?page=2")
    shown = page.locator(".dispatch-item").evaluate_all("els => els.map(e => +e.dataset.number)")
    assert shown == [r.id for r in rows[20:40]]
    page.get_by_text("← Newer").click()
    page.wait_for_load_state()
    assert page.url.endswith("/?page=1")
    pages = -(-len(rows) // 20)
    answer = page.goto(f"{desk.url}/?page={pages + 1}")
    assert answer is not None
    assert answer.status == 404
    assert "There is no page" in page.locator("main").inner_text()


def test_script_in_a_note_and_a_headline_shows_as_text_and_never_runs(
    desk: Desk, reader: Reader
) -> None:
    """An operator's note and a headline carrying <script> reach the pages as visible text; the
    browser finds no script element and the script's side effect never happens."""
    rows = [r for r in _rows(desk.db_url) if "__pwned" in r.body_md]
    assert rows, "the note must reach a dispatch body"
    page = reader.page
    page.goto(f"{desk.url}/read/{rows[-1].id}")
    body = page.locator("div.body").inner_text()
    assert SCRIPT in body
    assert page.evaluate("() => document.querySelectorAll('script').length") == 0
    assert page.evaluate("() => window.__pwned === undefined")
    reader.shot("escaped-note")
    page.get_by_text("see the trail →").click()
    page.wait_for_load_state()
    assert SCRIPT in page.locator(".note-text").first.inner_text()
    assert any(SCRIPT in h for h in page.locator(".headline").all_inner_texts())
    assert page.evaluate("() => document.querySelectorAll('script').length") == 0
    assert page.evaluate("() => window.__pwned === undefined")


def test_atom_feed_lists_the_newest_dispatches(desk: Desk) -> None:
    """The Atom feed carries the 30 newest dispatches, newest first, linking their pages, with
    the script text escaped in the XML."""
    rows = _rows(desk.db_url)
    answer = desk.get("/feed.atom")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(answer.content)
    entries = root.findall("a:entry", ns)
    assert len(entries) == 30
    titles = [e.findtext("a:title", namespaces=ns) for e in entries]
    assert titles == [r.title for r in rows[:30]]
    link = entries[0].find("a:link", ns)
    assert link is not None
    assert link.get("href", "").startswith(f"{desk.url}/read/{rows[0].id}/")
    assert len({e.findtext("a:id", namespaces=ns) for e in entries}) == 30
    noted = [i for i, r in enumerate(rows[:30]) if "__pwned" in r.body_md]
    assert noted, "the note's dispatch is among the newest 30"
    html = entries[noted[0]].findtext("a:content", namespaces=ns) or ""
    assert "&lt;script&gt;window.__pwned" in html
    assert "<script>" not in html


def test_json_api_answers_with_the_contracts(desk: Desk) -> None:
    """The API's list, one dispatch and scoreboard parse as their contracts and match the
    database; its OpenAPI document names those schemas and /docs loads nothing from outside."""
    rows = _rows(desk.db_url)
    listing = DispatchList.model_validate_json(desk.get("/api/dispatches?per_page=5").content)
    assert [i.number for i in listing.items] == [r.id for r in rows[:5]]
    assert listing.total == len(rows)
    assert listing.pages == -(-len(rows) // 5)
    one = DispatchView.model_validate_json(desk.get(f"/api/dispatches/{rows[3].id}").content)
    assert one.dispatch == Dispatch.model_validate(rows[3].payload)
    assert (one.older, one.newer) == (rows[4].id, rows[2].id)
    board = TrackRecord.model_validate_json(desk.get("/api/scoreboard").content)
    assert board == driver.record(desk.db_url)
    schemas = desk.get("/openapi.json").json()["components"]["schemas"]
    assert {"Dispatch", "DispatchView", "DispatchList", "TrackRecord", "ScoreLine"} <= set(schemas)
    assert desk.get("/api/dispatches?page=0").status_code == 422


def test_api_docs_page_loads_without_the_internet(desk: Desk, reader: Reader) -> None:
    """/docs renders the API's operations from assets served by the desk itself."""
    reader.page.goto(desk.url + "/docs")
    reader.page.get_by_text("/api/scoreboard", exact=True).wait_for(timeout=60_000)
    reader.shot("api-docs")
    assert reader.outside == []


def test_unknown_numbers_and_slugs_are_404_pages(desk: Desk, reader: Reader) -> None:
    """A number or a slug that does not exist answers 404 with a page (JSON under /api)."""
    row = _rows(desk.db_url)[0]
    missing = max(r.id for r in _rows(desk.db_url)) + 1000
    for path in (f"/read/{missing}/anything", f"/read/{row.id}/not-its-slug", f"/read/{missing}",
                 f"/read/{missing}.md", f"/read/{row.id}/not-its-slug/trail", "/read/abc",
                 "/charts/nothing.png"):  # fmt: skip
        answer = desk.get(path)
        assert answer.status_code == 404, path
        assert "text/html" in answer.headers["content-type"], path
        assert "Not found" in answer.text, path
        assert "Traceback" not in answer.text, path
    api = desk.get(f"/api/dispatches/{missing}")
    assert api.status_code == 404
    assert api.json() == {"detail": f"There is no dispatch No. {missing}."}
    page = reader.page
    shown = page.goto(f"{desk.url}/read/{missing}/anything")
    assert shown is not None
    assert shown.status == 404
    assert f"There is no dispatch No. {missing}." in page.locator("main").inner_text()
    reader.shot("not-found")


def test_markdown_of_a_dispatch_by_number(desk: Desk) -> None:
    """/read/N.md is the dispatch's markdown with its status and permanent link."""
    row = _rows(desk.db_url)[5]
    answer = desk.get(f"/read/{row.id}.md")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/markdown")
    assert f"# {row.title}" in answer.text
    status = DispatchView.model_validate_json(desk.get(f"/api/dispatches/{row.id}").content).status
    assert f"**Status:** {status.text}" in answer.text
    assert re.search(
        rf"Permanent link: {re.escape(desk.url)}/read/{row.id}/[a-z0-9-]+", answer.text
    )


def test_terminal_lists_dispatches_in_80_columns_and_prints_one(desk: Desk) -> None:
    """`workshop dispatches` fits 80 columns with every number shown; `workshop dispatch N`
    prints that dispatch with its status."""
    rows = _rows(desk.db_url)
    console = Console(width=80, record=True)
    console.print(render.dispatch_table(driver.dispatch_list(desk.db_url, 1, 20)))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    numbers = [int(m) for m in re.findall(r"^\s*(\d+)\s+\d{4}-\d{2}-\d{2}", text, re.M)]
    assert numbers == [r.id for r in rows[:20]]
    env = {**os.environ, "WORKSHOP_DATABASE_URL": desk.db_url, "WORKSHOP_HOME": str(desk.home)}
    shown = subprocess.run(
        [sys.executable, "-m", "workshop.cli", "dispatch", str(rows[2].id)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert f"# {rows[2].title}" in shown.stdout
    assert "**Status:**" in shown.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "workshop.cli", "dispatches", "--per-page", "3"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert rows[0].title[:20] in listed.stdout
    gone = subprocess.run(
        [sys.executable, "-m", "workshop.cli", "dispatch", "999999"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert gone.returncode == 1
    assert "no dispatch No. 999999" in gone.stderr
