from __future__ import annotations

from collections.abc import Iterator

from dbfix.codemod import Codemod, FileContext, defines_mapped_class, mentions_any
from dbfix.config import Config
from dbfix.datetimes import (
    awareness,
    consumer,
    datetime_columns,
    default_values,
    make_aware,
    make_naive,
    mentions_utcnow,
    utc_spelling,
)
from dbfix.findings import Finding
from dbfix.index import ProjectIndex
from dbfix.versions import TargetVersions


class DatetimeDefaultMismatch(Codemod):
    """A datetime default whose awareness does not match its column.

    ## What it does
    Finds defaults that produce an aware datetime (`datetime.now(timezone.utc)`, `datetime.now(UTC)`) on a
    naive `DateTime()` column, and defaults that produce a naive one (`datetime.now`, `datetime.now()`,
    `datetime.now(UTC).replace(tzinfo=None)`) on a `DateTime(timezone=True)` column. SQLModel `datetime`
    fields follow the project's SQLModel version: naive up to 0.0.44, `timestamptz` from 0.0.45 on (where
    `NaiveDatetime` stays naive).

    ## Why is this bad?
    asyncpg rejects an aware value for a `timestamp without time zone` column (`can't subtract offset-naive
    and offset-aware datetimes`), so every INSERT fails; psycopg silently converts it to the session's time
    zone. SQLModel >= 0.0.45 raises `Datetime values must have timezone information` for a naive value. A
    naive value in a `timestamptz` column is read in the session time zone by psycopg.

    ## Example
    ```python
    created_at = Column(DateTime, default=lambda: datetime.now(timezone.utc))
    seen_at = Column(DateTime(timezone=True), default=datetime.now)
    ```

    ## Use instead
    ```python
    created_at = Column(DateTime, default=lambda: datetime.now(timezone.utc).replace(tzinfo=None))
    seen_at = Column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    ```

    ## Fix safety
    Safe: the value keeps its UTC instant and gets the form its column stores correctly with every driver.
    Defaults in another time zone than UTC are reported without a fix.

    ## Database impact
    None: the column is unchanged; the fix makes inserts work (asyncpg) or store the right instant (psycopg).
    """

    code = "DBF004"
    name = "datetime-default-mismatch"
    # every value it judges calls or names a method of the datetime class (`awareness`)
    triggers = r"\.[\s\\]*(?:now|today|fromtimestamp|utcnow|utcfromtimestamp)\b"
    local_triggers = True

    @classmethod
    def wanted(cls, source: str, index: ProjectIndex, config: Config, versions: TargetVersions) -> bool:
        # Defaults are in the files that define models, mixins or tables. A value written elsewhere
        # (`user.seen_at = ...`, `User(seen_at=...)`) names a datetime column and is proven from a model's name.
        if "datetime" not in source:
            return False
        if "Table(" in source or defines_mapped_class(source, index):
            return True
        models, attrs = datetime_columns(index)
        return mentions_any(source, attrs) and mentions_any(source, models)  # one scan of the text

    def detect(self, ctx: FileContext) -> Iterator[Finding]:
        for value in default_values(ctx):
            kind = awareness(ctx, value)
            if kind is None or mentions_utcnow(ctx, value):
                continue
            target = consumer(ctx, value)
            if target is None or target.timezone is None:
                continue
            if target.timezone is False and kind in ("aware", "aware-other"):
                message = f"aware default for the naive `timestamp` column `{target.column}`"
                edits = make_naive(ctx, value)
                yield self.finding(
                    ctx, value, message, edits=edits or (), description="drop the tzinfo: `.replace(tzinfo=None)`"
                )
            elif target.timezone is True and kind == "naive":
                message = f"naive default for the `timestamptz` column `{target.column}`"
                utc = utc_spelling(ctx, value)
                edits = make_aware(ctx, value, utc) if utc else None
                yield self.finding(
                    ctx,
                    value,
                    message,
                    edits=edits or (),
                    imports=utc.imports if utc else (),
                    description=f"use the aware `datetime.now({utc.code if utc else 'UTC'})`",
                )
