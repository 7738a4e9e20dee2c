"""Alembic migrations for credmail, installed as the `credmail_migrations` package."""
