from datetime import datetime

from sqlalchemy.orm import Session

from .models import User


def register(session: Session, email: str, org_id: int) -> User:
    user = User(email=email, org_id=org_id, metadata={"source": "signup"})
    session.add(user)
    return user


def touch(user: User) -> None:
    user.metadata = {**(user.metadata or {}), "seen": datetime.utcnow().isoformat()}
