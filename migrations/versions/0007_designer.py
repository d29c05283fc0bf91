"""Process drafts and instance migration (issue 7, designer)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "process_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_key", sa.String(length=120), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("base_version_id", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=80), nullable=True),
        sa.Column("updated_at", engine.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_hash", sa.String(length=64), nullable=True),
        sa.Column("checked_at", engine.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("check_result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["base_version_id"],
            ["process_version.id"],
            name=op.f("fk_process_draft_base_version_id_process_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_draft")),
        sa.UniqueConstraint("process_key", name=op.f("uq_process_draft_process_key")),
    )


def downgrade() -> None:
    op.drop_table("process_draft")
