"""The project index: models in every style across modules, their bases, MetaData, columns and enums."""

from __future__ import annotations

from pathlib import Path

from dbfix.index import UNKNOWN, build_index

FILES = {
    "app/__init__.py": "",
    "app/models/__init__.py": "from .base import Base, Model\nfrom .user import User\n",
    "app/models/base.py": (
        "from sqlalchemy import MetaData\n"
        "from sqlalchemy.orm import DeclarativeBase\n"
        "my_metadata = MetaData(naming_convention={'uq': '%(table_name)s_%(column_0_N_name)s_key'})\n"
        "class Model(DeclarativeBase):\n"
        "    __abstract__ = True\n"
        "    metadata = my_metadata\n"
        "class Base(DeclarativeBase):\n"
        "    pass\n"
    ),
    "app/models/enums.py": "import enum\nclass Role(str, enum.Enum):\n    ADMIN = 'admin'\n    OTHER = compute()\n",
    "app/models/user.py": (
        "from typing import Optional\n"
        "import sqlalchemy as sa\n"
        "from sqlalchemy.orm import Mapped, mapped_column\n"
        "from app.models import Model\n"
        "from .enums import Role\n"
        "class TimestampMixin:\n"
        "    created_at = sa.Column(sa.DateTime(timezone=True))\n"
        "class User(TimestampMixin, Model):\n"
        "    __tablename__ = 'users'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    role = sa.Column(sa.Enum(Role, name='user_role'))\n"
        "    org_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey('orgs.id'))\n"
        "    type Alias = int\n"
    ),
    "app/ext.py": (
        "from flask_sqlalchemy import SQLAlchemy\n"
        "db = SQLAlchemy()\n"
        "class BlogPost(db.Model):\n"
        "    id = db.Column(db.Integer, primary_key=True)\n"
        "    when = db.Column(db.DateTime)\n"
    ),
    "app/sm.py": (
        "from sqlmodel import SQLModel, Field\n"
        "class Hero(SQLModel, table=True):\n"
        "    id: int | None = Field(default=None, primary_key=True)\n"
        "class HeroBase(SQLModel):\n"
        "    name: str\n"
    ),
}


def _index(tmp_path: Path):
    files = []
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append((path, text.encode()))
    return build_index(files, tmp_path)


def test_models_in_every_style_and_only_those(tmp_path: Path) -> None:
    index = _index(tmp_path)
    assert sorted(index.models) == ["app.ext.BlogPost", "app.models.user.User", "app.sm.Hero"]
    assert index.models["app.ext.BlogPost"].style == "flask"
    assert index.models["app.ext.BlogPost"].table == "blog_post"
    assert index.models["app.sm.Hero"].table == "hero"


def test_columns_follow_mixins_re_exports_and_aliases(tmp_path: Path) -> None:
    user = _index(tmp_path).models["app.models.user.User"]
    assert user.table == "users"
    assert user.base == "app.models.base.Model"
    assert user.columns["created_at"].timezone is True  # from the mixin
    assert user.columns["role"].enum == "app.models.enums.Role"
    assert user.columns["org_id"].nullable is True
    assert [fk.target for fk in user.columns["org_id"].foreign_keys] == ["orgs.id"]


def test_a_metadata_assigned_by_name_is_the_models_metadata(tmp_path: Path) -> None:
    index = _index(tmp_path)
    user = index.models["app.models.user.User"]
    assert user.metadata == "app.models.base.my_metadata"
    assert index.instances[user.metadata].naming_convention == {"uq": "%(table_name)s_%(column_0_N_name)s_key"}


def test_enum_members_with_values_we_cannot_read(tmp_path: Path) -> None:
    assert _index(tmp_path).enum_members("app.models.enums.Role") == [("ADMIN", "admin"), ("OTHER", UNKNOWN)]


def test_the_pool_builds_the_same_index(tmp_path: Path, monkeypatch) -> None:
    import dbfix.index
    from dbfix.workers import Shards

    sequential = _index(tmp_path)
    monkeypatch.setattr(dbfix.index, "PARALLEL_FILES", 1)
    files = [(tmp_path / name, None) for name in FILES]
    with Shards(2) as pool:
        parallel = build_index(files, tmp_path, pool=pool)
    assert parallel.digest == sequential.digest
    assert sorted(parallel.models) == sorted(sequential.models)
    for name, facts in sequential.modules.items():
        assert parallel.modules[name].classes == facts.classes, name
