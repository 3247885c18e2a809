"""results version token

Revision ID: 5b1e0c7d9a3f
Revises: fff8464b547a
Create Date: 2026-11-24 10:00:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b1e0c7d9a3f'
down_revision = 'fff8464b547a'
branch_labels = None
depends_on = None


def upgrade():
    # Added in place (SQLite's ALTER TABLE ADD COLUMN, hence the server default): no copy of
    # results_versions, whose rows the result rows cascade from. (migrations/env.py also
    # turns SQLite's foreign keys off while migrating, so that a rebuild cannot cascade.)
    with op.batch_alter_table('results_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=16), nullable=False, server_default=''))
    versions = sa.table('results_versions', sa.column('id', sa.Integer), sa.column('token', sa.String))
    conn = op.get_bind()
    for (version_id,) in conn.execute(sa.select(versions.c.id)).all():
        conn.execute(
            versions.update().where(versions.c.id == version_id).values(token=secrets.token_hex(8))
        )


def downgrade():
    # In place too (SQLite 3.35+ and PostgreSQL).
    op.execute('ALTER TABLE results_versions DROP COLUMN token')
