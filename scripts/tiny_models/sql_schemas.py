"""Random SQLite schemas (tables of typed columns, foreign keys) and rows to fill them.

A schema is drawn from a catalogue of table kinds (customers, orders, products, employees, ...):
each table keeps ``id INTEGER PRIMARY KEY`` plus a random subset of its kind's columns, some
kinds go by several names (customers or clients), and a table whose parent kind is in the same
schema references it through ``<parent>_id``.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field

Value = str | int | float

CITIES = ("Paris", "London", "Berlin", "Madrid", "Rome", "Tokyo", "Boston", "Chicago",
          "Lima", "Oslo", "Dublin", "Vienna", "Seattle", "Denver", "Austin", "Toronto",
          "Sydney")  # fmt: skip
COUNTRIES = ("France", "Germany", "Spain", "Italy", "Japan", "Canada", "Brazil", "Peru",
             "Norway", "Ireland", "Austria", "Mexico", "India", "Kenya", "Chile")  # fmt: skip
FIRST_NAMES = ("Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Ivy",
               "Jack", "Karen", "Liam", "Mia", "Noah", "Olivia", "Paul", "Quinn",
               "Rose")  # fmt: skip
SURNAMES = ("Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans", "Walker", "Wright",
            "Green", "Hall", "Wood", "King", "Clarke", "Baker", "Turner")  # fmt: skip
GENRES = ("drama", "comedy", "horror", "fantasy", "history", "science", "romance", "poetry")
WORDS = ("Silent", "River", "Garden", "Storm", "Winter", "Golden", "Night", "Lost", "Blue",
         "City", "Road", "Star", "Ocean", "Fire", "Glass", "Stone")  # fmt: skip


@dataclass(frozen=True)
class ColumnKind:
    """A column a table kind may have: SQL type and the values its rows take."""

    name: str
    type: str  # INTEGER, REAL or TEXT
    choices: tuple[str, ...] = ()  # TEXT values
    low: int = 0  # INTEGER / REAL range
    high: int = 100
    # Few distinct values: questions filter and group by it.
    categorical: bool = False

    @property
    def numeric(self) -> bool:
        return self.type in ("INTEGER", "REAL")

    @property
    def words(self) -> str:
        """How a question names the column: signup_year -> 'signup year'."""
        return self.name.replace("_", " ")

    def value(self, rng: random.Random) -> Value:
        """One random value of this column."""
        if self.type == "TEXT":
            return rng.choice(self.choices)
        if self.type == "INTEGER":
            return rng.randint(self.low, self.high)
        return round(rng.uniform(self.low, self.high), 2)


def text(name: str, choices: tuple[str, ...], categorical: bool = True) -> ColumnKind:
    return ColumnKind(name, "TEXT", choices=choices, categorical=categorical)


def integer(name: str, low: int, high: int) -> ColumnKind:
    return ColumnKind(name, "INTEGER", low=low, high=high)


def real(name: str, low: int, high: int) -> ColumnKind:
    return ColumnKind(name, "REAL", low=low, high=high)


TITLES = tuple(f"{a} {b}" for a in WORDS[:8] for b in WORDS[8:])
PERSON = text("name", FIRST_NAMES, categorical=False)


@dataclass(frozen=True)
class TableKind:
    """A kind of table: its possible names (plural, singular) and columns; ``label`` names a row."""

    names: tuple[tuple[str, str], ...]
    columns: tuple[ColumnKind, ...]
    label: str = "name"
    parents: tuple[str, ...] = ()  # kinds (their first plural name) this one may reference


CATALOGUE: tuple[TableKind, ...] = (
    TableKind((("customers", "customer"), ("clients", "client")), (
        PERSON, text("city", CITIES), text("country", COUNTRIES), integer("age", 18, 80),
        integer("signup_year", 2010, 2024), text("tier", ("gold", "silver", "bronze")))),
    TableKind((("orders", "order"), ("purchases", "purchase")), (
        real("total", 5, 900), integer("quantity", 1, 20), integer("order_year", 2015, 2024),
        text("status", ("pending", "shipped", "delivered", "cancelled"))),
        label="status", parents=("customers", "products")),
    TableKind((("products", "product"), ("items", "item")), (
        text("name", tuple(f"{w} {k}" for w in WORDS[:6] for k in ("Lamp", "Chair", "Mug"))),
        text("category", ("toys", "books", "garden", "kitchen", "sports", "music")),
        real("price", 1, 500), integer("stock", 0, 300),
        text("brand", ("Acme", "Globex", "Initech", "Umbrella", "Stark")))),
    TableKind((("employees", "employee"), ("staff", "staff member")), (
        PERSON, real("salary", 30000, 150000), integer("age", 20, 65), text("city", CITIES),
        integer("hire_year", 2000, 2024)), parents=("departments",)),
    TableKind((("departments", "department"), ("teams", "team")), (
        text("name", ("Sales", "Finance", "Research", "Support", "Legal", "Marketing")),
        real("budget", 10000, 900000), integer("floor", 1, 12))),
    TableKind((("students", "student"), ("pupils", "pupil")), (
        PERSON, integer("grade", 1, 12), integer("age", 6, 19), real("score", 0, 100),
        text("city", CITIES)), parents=("courses",)),
    TableKind((("courses", "course"), ("classes", "class")), (
        text("title", ("Algebra", "Biology", "Chemistry", "History", "Art", "Music", "Physics")),
        integer("credits", 1, 6), text("teacher", SURNAMES)), label="title"),
    TableKind((("books", "book"),), (
        text("title", TITLES, categorical=False), text("genre", GENRES), integer("pages", 50, 900),
        real("price", 3, 60), integer("year", 1950, 2024)), label="title", parents=("authors",)),
    TableKind((("authors", "author"), ("writers", "writer")), (
        text("name", SURNAMES, categorical=False), text("country", COUNTRIES),
        integer("birth_year", 1920, 2000))),
    TableKind((("movies", "movie"), ("films", "film")), (
        text("title", TITLES, categorical=False), text("genre", GENRES),
        integer("year", 1960, 2024), real("rating", 1, 10), integer("duration", 70, 200),
        text("director", SURNAMES)), label="title"),
    TableKind((("suppliers", "supplier"), ("vendors", "vendor")), (
        text("name", ("Acme", "Globex", "Initech", "Hooli", "Vandelay", "Wonka")),
        text("country", COUNTRIES), text("city", CITIES), integer("rating", 1, 5))),
    TableKind((("patients", "patient"),), (
        PERSON, integer("age", 1, 95), text("blood_type", ("A", "B", "AB", "O")),
        text("city", CITIES), real("weight", 3, 120))),
    TableKind((("flights", "flight"),), (
        text("origin", CITIES), text("destination", CITIES),
        text("airline", ("Skyway", "Aero", "Nimbus", "Polar")),
        integer("distance", 200, 9000), real("price", 40, 1500)), label="origin"),
)  # fmt: skip
KINDS = {kind.names[0][0]: kind for kind in CATALOGUE}


@dataclass(frozen=True)
class Column:
    """A column of a generated table; ``kind`` is None for id and foreign-key columns."""

    name: str
    type: str
    kind: ColumnKind | None = None
    references: str | None = None  # the parent table of a foreign key


@dataclass(frozen=True)
class Table:
    """One generated table."""

    name: str
    singular: str
    kind: TableKind
    columns: tuple[Column, ...]

    @property
    def data_columns(self) -> list[ColumnKind]:
        """The columns with generated values (not id, not foreign keys)."""
        return [c.kind for c in self.columns if c.kind is not None]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def foreign_keys(self) -> list[Column]:
        return [c for c in self.columns if c.references is not None]

    def ddl(self) -> str:
        """``CREATE TABLE name (...);`` on one line."""
        parts = []
        for c in self.columns:
            extra = " PRIMARY KEY" if c.name == "id" else ""
            extra += f" REFERENCES {c.references}(id)" if c.references else ""
            parts.append(f"{c.name} {c.type}{extra}")
        return f"CREATE TABLE {self.name} ({', '.join(parts)});"


@dataclass(frozen=True)
class Schema:
    """A few tables, parents before children."""

    tables: tuple[Table, ...] = field(default_factory=tuple)

    def ddl(self) -> str:
        return "\n".join(table.ddl() for table in self.tables)

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


def random_table(
    kind: TableKind, rng: random.Random, parents: list[Table], taken: set[str]
) -> Table:
    """A table of ``kind`` with 2-5 of its columns, referencing the given parent tables."""
    name, singular = rng.choice([n for n in kind.names if n[0] not in taken] or kind.names[:1])
    chosen = rng.sample(kind.columns, k=rng.randint(2, min(5, len(kind.columns))))
    if kind.label not in {c.name for c in chosen}:
        chosen.insert(0, next(c for c in kind.columns if c.name == kind.label))
    columns = [Column("id", "INTEGER"), *(Column(c.name, c.type, c) for c in chosen)]
    for parent in parents:
        key = Column(f"{parent.singular.replace(' ', '_')}_id", "INTEGER", references=parent.name)
        columns.insert(rng.randint(1, len(columns)), key)
    return Table(name, singular, kind, tuple(columns))


def random_schema(rng: random.Random) -> Schema:
    """One to three tables; half the time a parent and a child that references it."""
    if rng.random() < 0.5:
        child = rng.choice([k for k in CATALOGUE if k.parents])
        kinds = [KINDS[rng.choice(child.parents)], child]
    else:
        kinds = rng.sample(CATALOGUE, k=rng.choice([1, 2, 2, 3]))
    if rng.random() < 0.3:
        extra = rng.choice([k for k in CATALOGUE if k not in kinds])
        kinds.insert(rng.randint(0, len(kinds)), extra)
    tables: list[Table] = []
    for kind in kinds:
        parents = [t for t in tables if t.kind.names[0][0] in kind.parents]
        tables.append(random_table(kind, rng, parents, {t.name for t in tables}))
    return Schema(tuple(tables))


def create_database(schema: Schema, rng: random.Random, rows: int = 12) -> sqlite3.Connection:
    """An in-memory SQLite database with the schema and ``rows`` random rows per table."""
    db = sqlite3.connect(":memory:")
    db.executescript(schema.ddl())
    for table in schema.tables:
        names = [c.name for c in table.columns]
        marks = ", ".join("?" for _ in names)
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
        for row_id in range(1, rows + 1):
            db.execute(sql, [cell(c, row_id, rng, rows) for c in table.columns])
    return db


def cell(column: Column, row_id: int, rng: random.Random, rows: int) -> Value:
    if column.name == "id":
        return row_id
    if column.kind is None:  # a foreign key into a parent with ids 1..rows
        return rng.randint(1, rows)
    return column.kind.value(rng)
