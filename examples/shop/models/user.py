import enum
from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Enum, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import JSONB

from .base import Base


class UserRole(str, enum.Enum):
    ADMIN = "admin"
    MEMBER = "member"


class User(Base):
    __tablename__ = "users"

    id = Column(Integer, primary_key=True)
    email = Column(String(255), nullable=False)
    org_id = Column(Integer, ForeignKey("organizations.id"))
    role = Column(Enum(UserRole), nullable=False, default=UserRole.MEMBER)
    metadata = Column(JSONB)
    created_at = Column(DateTime, default=datetime.utcnow)
    last_seen_at = Column(DateTime, default=lambda: datetime.now(timezone.utc))
