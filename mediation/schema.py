"""One metadata for every table, and Alembic migrations run programmatically (`onedoor db upgrade`)."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config

from mediation.db import Base

# Modules that define tables. Optional ones are imported when present (they land with their features).
TABLE_MODULES = ["mediation.models", "mediation.audit", "mediation.recording_records", "mediation.agreements.models",
                 "mediation.export_jobs"]


def load_all() -> None:
    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if not name.startswith(e.name or "?"):
                raise


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Synchronous (Alembic runs its own event loop): call before the server's loop starts, or in a thread."""
    command.upgrade(alembic_config(url), revision)


load_all()
metadata = Base.metadata
