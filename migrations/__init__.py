"""Alembic migrations: the only owner of Wangge's schema."""
