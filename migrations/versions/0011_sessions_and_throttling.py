"""Revocable page sessions, sign-in throttling per client address, shared settings (issue 14)

- user_account.session_version: stamped into page sessions, raised to end them all;
- sign_in_throttle is keyed by client address (and the name typed there) instead of locking a
  username; its counts are transient, so the old table is simply replaced;
- app_setting holds the session signing key `duban init` generates;
- ix_event_actor_kind finds one person's failed sign-ins without scanning the audit trail.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
        )
    op.drop_table("sign_in_throttle")
    op.create_table(
        "sign_in_throttle",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", engine.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("wait_until", engine.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("address", "scope", "username", name=op.f("pk_sign_in_throttle")),
    )
    op.create_table(
        "app_setting",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_setting")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_actor_kind", ["actor_id", "kind", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_actor_kind")
    op.drop_table("app_setting")
    op.drop_table("sign_in_throttle")
    op.create_table(
        "sign_in_throttle",
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", engine.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_sign_in_throttle")),
    )
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("session_version")
