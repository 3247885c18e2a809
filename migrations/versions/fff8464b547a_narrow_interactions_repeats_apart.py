"""narrow interactions, repeats apart

Interactions keep their times as epoch seconds only (the datetime copies go), lose their
foreign keys and the customer and queue indexes (each costs more than the whole bulk load on
PostgreSQL), the (day, agent) index takes the queue too (SQLite then groups the daily sums in
index order), their channel check is written without IN (slow in SQLite bulk inserts), and FCR
repeats move to their own table so computing them never rewrites rows.

Revision ID: fff8464b547a
Revises: ca7abc2afbba
Create Date: 2026-12-01 19:07:19.525996

"""
from alembic import op
import sqlalchemy as sa

import portal.db


# revision identifiers, used by Alembic.
revision = 'fff8464b547a'
down_revision = 'ca7abc2afbba'
branch_labels = None
depends_on = None

CHANNEL_CHECK = "channel = 'phone' OR channel = 'chat' OR channel = 'email' OR channel = 'social'"
OLD_CHANNEL_CHECK = "channel IN ('phone', 'chat', 'email', 'social')"


def upgrade():
    op.create_table('interaction_repeats',
    sa.Column('interaction_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('interaction_id', name=op.f('pk_interaction_repeats'))
    )
    op.execute(
        "INSERT INTO interaction_repeats (interaction_id) "
        "SELECT id FROM interactions WHERE has_repeat AND talk_s IS NOT NULL"
    )
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interactions_customer'))
        batch_op.drop_index(batch_op.f('ix_interactions_queue'))
        batch_op.drop_index(batch_op.f('ix_interactions_day_agent'))
        batch_op.create_index(
            'ix_interactions_day_agent_queue', ['offered_day', 'agent_id', 'queue'], unique=False
        )
        batch_op.drop_constraint(batch_op.f('fk_interactions_import_id_imports'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_interactions_agent_id_users'), type_='foreignkey')
        batch_op.drop_column('answered_at')
        batch_op.drop_column('has_repeat')
        batch_op.drop_column('ended_at')
        batch_op.drop_column('offered_at')
        batch_op.drop_constraint(batch_op.f('ck_interactions_known_channel'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_interactions_known_channel'),
            sa.text(CHANNEL_CHECK),
        )


def _timestamp(seconds: str) -> str:
    """SQL: epoch seconds as the timestamp the old columns held."""
    if op.get_bind().dialect.name == "postgresql":
        return f"to_timestamp({seconds})"
    micro = f"CAST(round(({seconds}) * 1000000) AS INTEGER)"
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', {micro} / 1000000, 'unixepoch') || '.' || "
        f"printf('%06d', {micro} % 1000000)"
    )


def downgrade():
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offered_at', portal.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('ended_at', portal.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('has_repeat', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', portal.db.UTCDateTime(), nullable=True))
    op.execute(
        f"UPDATE interactions SET offered_at = {_timestamp('offered_s')}, "
        f"ended_at = {_timestamp('ended_s')}, "
        f"answered_at = CASE WHEN talk_s IS NULL THEN NULL "
        f"ELSE {_timestamp('offered_s + wait_s')} END, "
        "has_repeat = id IN (SELECT interaction_id FROM interaction_repeats)"
    )
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_interactions_known_channel'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_interactions_known_channel'), sa.text(OLD_CHANNEL_CHECK)
        )
        batch_op.alter_column('offered_at', nullable=False)
        batch_op.alter_column('ended_at', nullable=False)
        batch_op.alter_column('has_repeat', nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_interactions_agent_id_users'), 'users', ['agent_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_foreign_key(batch_op.f('fk_interactions_import_id_imports'), 'imports', ['import_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_interactions_queue'), ['queue'], unique=False)
        batch_op.drop_index('ix_interactions_day_agent_queue')
        batch_op.create_index(
            batch_op.f('ix_interactions_day_agent'), ['offered_day', 'agent_id'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_interactions_customer'), ['customer_key', 'offered_s'], unique=False)

    op.drop_table('interaction_repeats')
