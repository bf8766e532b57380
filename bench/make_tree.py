"""Write a synthetic project of N Python files: models in every style, with and without pitfalls, plus plain code.

    python bench/make_tree.py 5000 /tmp/tree5k
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

DECLARATIVE = '''\
import enum
from datetime import UTC, datetime
from typing import Optional

from sqlalchemy import DateTime, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from {pkg}.base import Base


class Status{i}(str, enum.Enum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Thing{i}(Base):
    __tablename__ = "thing_{i}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("thing_{i}.id"))
    status: Mapped[Status{i}] = mapped_column(Enum(Status{i}, values_callable=lambda e: [m.value for m in e]))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
{pitfall}

    def describe(self) -> str:
        return f"{{self.name}} ({{self.status.value}})"
'''
PITFALLS = [
    "    updated_at = mapped_column(DateTime, default=datetime.utcnow)",
    "    seen_at: Mapped[datetime] = mapped_column(DateTime, default=lambda: datetime.now(UTC))",
    "",
    "",
    "",
]
CLASSIC = '''\
import datetime as dt

import sqlalchemy as sa

from {pkg}.base import LegacyBase


class Legacy{i}(LegacyBase):
    __tablename__ = "legacy_{i}"
    id = sa.Column(sa.Integer, primary_key=True)
    title = sa.Column(sa.String(200), nullable=False)
    touched = sa.Column(sa.DateTime, default={default})
'''
SQLMODEL = '''\
from datetime import datetime, timezone
from typing import Optional

from sqlmodel import Field, SQLModel


class Hero{i}(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    age: Optional[int] = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
'''
PLAIN = '''\
"""Ordinary application code: no database at all."""

import json
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Payload{i}:
    key: str
    values: list[int] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.values)

    def dump(self) -> str:
        log.debug("dump %s", self.key)
        return json.dumps({{"key": self.key, "values": self.values, "metadata": self.metadata}})


def process_{i}(items: list[Payload{i}]) -> dict[str, int]:
    result: dict[str, int] = {{}}
    for item in items:
        if item.key in result:
            result[item.key] += item.total()
        else:
            result[item.key] = item.total()
    return result
''' + "\n".join(f"\n\ndef helper_{{i}}_{k}(x: int) -> int:\n    return x * {k} + len(str(x))" for k in range(12)) + "\n"
BASE = '''\
from sqlalchemy.orm import DeclarativeBase, declarative_base


class Base(DeclarativeBase):
    pass


LegacyBase = declarative_base()
'''


def models_module(pkg: str, rng: random.Random) -> str:
    """A typical models module of about 10 KB (what an editor sends through `--stdin-filename`)."""
    parts = []
    for k in range(12):
        text = DECLARATIVE.format(pkg=pkg, i=f"M{k}", pitfall=rng.choice(PITFALLS))
        parts.append(text if k == 0 else text[text.index("\n\n\nclass") :])  # the imports once
    return "".join(parts)


def main(count: int, root: Path) -> None:
    rng = random.Random(20261121)
    pkg = "app"
    (root / pkg).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "synthetic"\nrequires-python = ">=3.11"\ndependencies = ["sqlalchemy>=2.0", "sqlmodel>=0.0.45"]\n')
    (root / pkg / "__init__.py").write_text("")
    (root / pkg / "base.py").write_text(BASE)
    (root / pkg / "models.py").write_text(models_module(pkg, rng))
    per_dir = 200
    for i in range(count - 3):
        folder = root / pkg / f"part{i // per_dir}"
        if i % per_dir == 0:
            folder.mkdir(exist_ok=True)
            (folder / "__init__.py").write_text("")
        kind = rng.random()
        if kind < 0.15:
            text = DECLARATIVE.format(pkg=pkg, i=i, pitfall=rng.choice(PITFALLS))
        elif kind < 0.22:
            default = rng.choice(["dt.datetime.utcnow", "lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None)"])
            text = CLASSIC.format(pkg=pkg, i=i, default=default)
        elif kind < 0.27:
            text = SQLMODEL.format(i=i)
        else:
            text = PLAIN.format(i=i)
        (folder / f"mod_{i}.py").write_text(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/make_tree.py N DIR")
    main(int(sys.argv[1]), Path(sys.argv[2]))
