"""FRED as its clients see it: series/observations JSON (with vintages) and the fredgraph CSV."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from tests.fakes.http import FakeServer, Reply, Request

OBSERVATIONS = "/fred/series/observations"
GRAPH_CSV = "/graph/fredgraph.csv"
# (observation date, value text, realtime_start, realtime_end): one vintage of one observation.
Vintage = tuple[date, str, date, str]


def observations_json(vintages: Sequence[Vintage]) -> str:
    """The observations answer for realtime_start=1776-07-04: one row per vintage."""
    rows = [
        {"realtime_start": rs.isoformat(), "realtime_end": re, "date": d.isoformat(), "value": v}
        for d, v, rs, re in vintages
    ]
    return json.dumps(
        {
            "realtime_start": "1776-07-04",
            "realtime_end": "9999-12-31",
            "observation_start": "1600-01-01",
            "observation_end": "9999-12-31",
            "units": "lin",
            "output_type": 1,
            "file_type": "json",
            "order_by": "observation_date",
            "sort_order": "asc",
            "count": len(rows),
            "offset": 0,
            "limit": 100000,
            "observations": rows,
        }
    )


def graph_csv(series: str, rows: Sequence[tuple[date, str]]) -> str:
    """The keyless download: `observation_date,SERIES`, '.' for a missing value."""
    lines = [f"observation_date,{series}"] + [f"{d.isoformat()},{v}" for d, v in rows]
    return "\n".join(lines) + "\n"


def install_fred(
    fake: FakeServer,
    api: dict[str, Sequence[Vintage]] | None = None,
    csv: dict[str, Sequence[tuple[date, str]]] | None = None,
) -> None:
    """Answer observations (needs api_key and file_type=json) and fredgraph.csv per series id."""
    api = api or {}
    csv = csv or {}

    def observations(request: Request) -> Reply:
        series = request.param("series_id") or ""
        if not request.param("api_key") or request.param("file_type") != "json":
            return Reply(status=400, body=json.dumps({"error_code": 400, "error_message": "Bad"}))
        if series not in api:
            body = {"error_code": 400, "error_message": "Bad Request.  The series does not exist."}
            return Reply(status=400, body=json.dumps(body))
        return Reply(body=observations_json(api[series]))

    def graph(request: Request) -> Reply:
        series = request.param("id") or ""
        if series not in csv:
            return Reply(status=404, body="<html>Not found</html>", content_type="text/html")
        return Reply(body=graph_csv(series, csv[series]), content_type="text/csv")

    fake.handle(OBSERVATIONS, observations)
    fake.handle(GRAPH_CSV, graph)
