"""incident components: one row per (component, incident) that some alert of the incident is on

Why: correlation asks, for every post that opens a group, which open incident already has an alert
on one of its components. Read from ``alerts`` that cost every alert of every open incident:
12-93 ms per post once the open incidents held 15,000 alerts (``python -m bench ingest`` on
PostgreSQL, batches of 10), the largest single cost of batch ingest. The pairs are kept by triggers
on ``alerts`` (insert, and an update of its incident, service or node), so every writer in every
process keeps them without knowing; the existing alerts are copied in here.

No unique constraint, on purpose: two transactions adding the same pair never wait for each other,
so they cannot deadlock on it; the reader takes distinct pairs.

Revision ID: 0086
Revises: 0085
Create Date: 2026-12-01 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0086'
down_revision = '0085'
branch_labels = None
depends_on = None

_PAIRS = """
    SELECT DISTINCT component, incident_id FROM (
        SELECT service AS component, incident_id FROM alerts WHERE incident_id IS NOT NULL
        UNION ALL SELECT node AS component, incident_id FROM alerts WHERE incident_id IS NOT NULL
    ) AS pairs WHERE component IS NOT NULL AND component <> ''
"""

# inserts: once per statement, over all its rows (a bulk insert of 1,000 alerts is one query, not 1,000);
# updates (an alert moved to another incident, a rare ORM path): per row, as transition tables cannot be
# combined with a column list
_PG_FUNCTIONS = """
CREATE FUNCTION alerts_incident_components_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_components (component, incident_id)
    SELECT DISTINCT p.component, p.incident_id FROM (
        SELECT service AS component, incident_id FROM new_alerts
        UNION ALL SELECT node AS component, incident_id FROM new_alerts) AS p
    WHERE p.incident_id IS NOT NULL AND p.component IS NOT NULL AND p.component <> '' AND NOT EXISTS (
        SELECT 1 FROM incident_components ic WHERE ic.component = p.component AND ic.incident_id = p.incident_id);
    RETURN NULL;
END $$;
CREATE FUNCTION alerts_incident_components_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.incident_id IS NOT NULL THEN
        INSERT INTO incident_components (component, incident_id)
        SELECT DISTINCT c, NEW.incident_id FROM unnest(ARRAY[NEW.service, NEW.node]) AS c
        WHERE c IS NOT NULL AND c <> '' AND NOT EXISTS (
            SELECT 1 FROM incident_components ic WHERE ic.component = c AND ic.incident_id = NEW.incident_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER alerts_incident_components_insert AFTER INSERT ON alerts REFERENCING NEW TABLE AS new_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION alerts_incident_components_insert();
CREATE TRIGGER alerts_incident_components_update AFTER UPDATE OF incident_id, service, node ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_incident_components_update();
"""


def _sqlite_trigger(name: str, event: str) -> str:
    inserts = "".join(f"""
        INSERT INTO incident_components (component, incident_id)
        SELECT NEW.{col}, NEW.incident_id WHERE NEW.{col} IS NOT NULL AND NEW.{col} <> '' AND NOT EXISTS (
            SELECT 1 FROM incident_components WHERE component = NEW.{col} AND incident_id = NEW.incident_id);"""
                      for col in ("service", "node"))
    return (f"CREATE TRIGGER {name} AFTER {event} ON alerts WHEN NEW.incident_id IS NOT NULL BEGIN"
            f"{inserts}\nEND")


def upgrade() -> None:
    op.create_table(
        'incident_components',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('component', sa.String(length=200), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_incident_components_incident_id_incidents'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_components')),
    )
    with op.batch_alter_table('incident_components', schema=None) as batch_op:
        batch_op.create_index('ix_incident_components_component', ['component', 'incident_id'], unique=False)
    op.execute(f"INSERT INTO incident_components (component, incident_id) {_PAIRS}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTIONS)
    else:
        op.execute(_sqlite_trigger("alerts_incident_components_insert", "INSERT"))
        op.execute(_sqlite_trigger("alerts_incident_components_update", "UPDATE OF incident_id, service, node"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS alerts_incident_components_{event} ON alerts")
            op.execute(f"DROP FUNCTION IF EXISTS alerts_incident_components_{event}()")
    else:
        op.execute("DROP TRIGGER IF EXISTS alerts_incident_components_insert")
        op.execute("DROP TRIGGER IF EXISTS alerts_incident_components_update")
    op.drop_table('incident_components')
