"""The airports dataset: the Hive DDL and the sample queries parse as Hive and as Trino, the
shipped CSV matches the DDL's columns and types, and the queries give the right answers on it
(run by sqlglot's Python executor)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

sqlglot = pytest.importorskip("sqlglot")
from sqlglot import exp  # noqa: E402
from sqlglot.executor import execute  # noqa: E402
from sqlglot.executor.python import ENV  # noqa: E402

ASSETS = Path(__file__).resolve().parents[2] / "stacks" / "assets" / "analytics"
QUERIES = sorted((ASSETS / "queries").glob("*.sql"))
DIALECTS = ("hive", "trino")
COLUMNS = ["iata_code", "airport", "city", "state", "country", "latitude", "longitude"]


def ddl(dialect: str) -> exp.Create:
    # Hive substitutes ${hivevar:location} before parsing; so does the test.
    text = (
        (ASSETS / "airports.hql").read_text().replace("${hivevar:location}", "s3://bucket/tables/airports/")
    )
    statement = sqlglot.parse_one(text, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(statement, exp.Create)
    return statement


def ddl_columns(dialect: str) -> dict[str, exp.DataType]:
    schema = ddl(dialect).this
    assert isinstance(schema, exp.Schema)
    return {col.name: col.args["kind"] for col in schema.expressions if isinstance(col, exp.ColumnDef)}


def sample_rows() -> list[dict[str, Any]]:
    """Read the sample as Hive's LazySimpleSerDe would: split on ',', cast by the DDL's types."""
    types = ddl_columns("hive")
    lines = (ASSETS / "airports-sample.csv").read_text().splitlines()
    header, body = lines[0].split(","), lines[1:]
    assert header == list(types)
    rows = []
    for line in body:
        fields = line.split(",")
        assert len(fields) == len(header), (
            f"{line!r}: {len(fields)} fields; a comma inside a value would shift columns"
        )
        row: dict[str, Any] = {}
        for name, value in zip(header, fields, strict=True):
            row[name] = float(value) if types[name].is_type(exp.DataType.Type.DOUBLE) else value
        rows.append(row)
    return rows


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ddl_parses_and_declares_the_issue_columns(dialect: str) -> None:
    columns = ddl_columns(dialect)
    assert list(columns) == COLUMNS
    numeric = {name for name, kind in columns.items() if kind.is_type(exp.DataType.Type.DOUBLE)}
    assert numeric == {"latitude", "longitude"}
    statement = ddl(dialect)
    assert statement.args["kind"] == "TABLE"
    properties = statement.args["properties"].sql(dialect="hive")
    assert "LOCATION 's3://bucket/tables/airports/'" in properties
    assert "'skip.header.line.count'='1'" in properties.replace(" ", "")


@pytest.mark.parametrize("query", QUERIES, ids=lambda p: p.stem)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_sample_queries_parse(query: Path, dialect: str) -> None:
    statement = sqlglot.parse_one(query.read_text(), read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(statement, exp.Select)
    assert {t.name for t in statement.find_all(exp.Table)} == {"airports"}


def test_sample_csv_matches_the_ddl() -> None:
    rows = sample_rows()
    assert len(rows) >= 20
    assert len({r["iata_code"] for r in rows}) == len(rows)
    for row in rows:
        assert len(row["iata_code"]) == 3 and row["iata_code"].isupper()
        assert len(row["state"]) == 2 and row["country"] == "USA"
        # Every US airport (states and Puerto Rico) lies in this box; a swapped column would not.
        assert 17.0 < row["latitude"] < 72.0 and -180.0 < row["longitude"] < -64.0, row


def run(query: str, dialect: str) -> list[tuple[Any, ...]]:
    for name in ("ASIN", "SQRT", "SIN", "COS", "RADIANS"):  # Trino and Hive have them; the executor does not
        ENV.setdefault(name, getattr(math, name.lower()))
    ENV.setdefault("POWER", math.pow)
    statement = sqlglot.parse_one((ASSETS / "queries" / f"{query}.sql").read_text(), read=dialect)
    return list(execute(statement, tables={"default": {"airports": sample_rows()}}).rows)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_queries_answer_correctly_on_the_sample(dialect: str) -> None:
    per_state = run("airports_per_state", dialect)
    # Counted by hand from the sample: AK, CA, FL and TX have two airports each.
    assert per_state[:4] == [("AK", 2), ("CA", 2), ("FL", 2), ("TX", 2)]
    assert [row[0] for row in run("northernmost", dialect)] == ["FAI", "ANC"]
    ((origin, destination, km),) = run("great_circle_km", dialect)
    # Published JFK-LAX great-circle distance: 2,475 statute miles = 3,983 km (on the WGS 84
    # ellipsoid). A sphere of mean radius 6371 km differs from the ellipsoid by under 0.5%.
    assert (origin, destination) == ("JFK", "LAX")
    assert km == pytest.approx(3983, rel=0.005)
