# Alembic environment (stub for the example): dbfix skips migrations/versions/ as history.
