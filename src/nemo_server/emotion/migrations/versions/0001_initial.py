"""emotion results per user

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emotion_results",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=True),
        sa.Column("item_id", sa.String(200), nullable=True),
        sa.Column("speaker", sa.String(64), nullable=True),
        sa.Column("start", sa.Float, nullable=True),
        sa.Column("end", sa.Float, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("sentiment_label", sa.String(16), nullable=False),
        sa.Column("sentiment_score", sa.Float, nullable=False),
        sa.Column("arousal", sa.Float, nullable=True),
        sa.Column("valence", sa.Float, nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_emotion_results_user_created", "emotion_results", ["user_id", "created_at"])
    op.create_index("ix_emotion_results_user_source", "emotion_results", ["user_id", "source_id"])


def downgrade() -> None:
    op.drop_index("ix_emotion_results_user_source", "emotion_results")
    op.drop_index("ix_emotion_results_user_created", "emotion_results")
    op.drop_table("emotion_results")
