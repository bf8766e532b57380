"""dbfix: codemods for SQLAlchemy and SQLModel database pitfalls."""

__version__ = "0.1.0"
