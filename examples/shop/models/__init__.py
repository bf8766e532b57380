from .base import Base
from .organization import Organization
from .user import User, UserRole

__all__ = ["Base", "Organization", "User", "UserRole"]
