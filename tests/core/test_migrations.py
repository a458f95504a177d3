"""The Alembic revisions build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.core.db import make_engine, migrations_current
from service.models import metadata


def test_models_match_migrations(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == []
        assert migrations_current(engine) is True
    finally:
        engine.dispose()


def test_sync_migration_copies_filter_attributes_of_existing_events(db_url: str) -> None:
    """0007_sync gives events written before it their filter attributes, from their data (and
    0010_moves the status an alignment change left), and goes down and up again cleanly."""
    import json

    import sqlalchemy as sa
    from alembic import command

    from service.core.db import alembic_config

    engine = make_engine(db_url)
    cfg = alembic_config(db_url)
    rows = [
        ("evt_1", 1, "school.listed", {"id": "sch_1", "country": "DE", "alignment": {"status": "aligned"}}),
        (
            "evt_2",
            2,
            "school.alignment.changed",
            {"school_id": "sch_1", "country": "NL", "previous_status": "aligned", "status": "lapsed"},
        ),
        ("evt_3", 3, "standards.translation.published", {"document": "training-standards", "language": "de"}),
        ("evt_4", 4, "standards.version.published", {"document": "training-standards", "status": 7}),
    ]
    try:
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006_change_generations")
            conn.commit()
            for event_id, sequence, kind, data in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO events (id, sequence, type, timestamp, data) "
                        "VALUES (:id, :seq, :type, '2026-12-01 10:00:00', :data)"
                    ),
                    {"id": event_id, "seq": sequence, "type": kind, "data": json.dumps(data)},
                )
            conn.commit()
            command.upgrade(cfg, "head")
            conn.commit()
            found = conn.execute(
                sa.text(
                    "SELECT id, country, document, language, status, previous_status, previous_country "
                    "FROM events ORDER BY sequence"
                )
            ).all()
        assert [tuple(r) for r in found] == [
            ("evt_1", "DE", None, None, "aligned", None, None),
            # 0010_moves: an alignment change remembers the status it left
            ("evt_2", "NL", None, None, "lapsed", "aligned", None),
            ("evt_3", None, "training-standards", "de", None, None, None),
            ("evt_4", None, "training-standards", None, None, None, None),  # a number is not a status
        ]
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, metadata) == []
    finally:
        engine.dispose()
