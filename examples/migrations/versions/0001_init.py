"""init"""
from datetime import datetime

revision = "0001"
down_revision = None
created = datetime.utcnow()


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
