"""The gateway's repository: every SQL statement of users, sessions and API keys lives here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nemo_server.common.db import Database
from nemo_server.common.errors import Conflict
from nemo_server.gateway.models import ApiKey, AuthSession, Setting, User


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Caller:
    """The user behind a request, read in one Core query (the ORM costs 10x on this hot path)."""

    user_id: str
    username: str
    role: str
    disabled: bool
    rate_limit_per_minute: int | None


@dataclass(frozen=True)
class SessionState:
    """What authenticating an access or refresh token needs to know."""

    user: Caller
    revoked: bool
    current_jti: str


@dataclass(frozen=True)
class KeyState:
    """What authenticating an API key needs to know."""

    user: Caller
    key_id: str
    rate_limit_per_minute: int | None


_CALLER = (User.id, User.username, User.role, User.disabled, User.rate_limit_per_minute)
_SESSION_STATE = (
    select(*_CALLER, AuthSession.revoked_at, AuthSession.current_jti)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.id == bindparam("sid"))
)
_KEY_STATE = (
    select(*_CALLER, ApiKey.id, ApiKey.rate_limit_per_minute)
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.key_hash == bindparam("hash"))
)


class GatewayStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # users -----------------------------------------------------------------------------
    def count_users(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(User)) or 0)

    def create_user(self, user: User) -> User:
        try:
            with self.db.session() as s:
                s.add(user)
        except IntegrityError:
            raise Conflict(f"username {user.username!r} is taken", param="username") from None
        return user

    def user_by_name(self, username: str) -> User | None:
        with self.db.session() as s:
            return s.scalar(select(User).where(User.username == username))

    def user_by_id(self, user_id: str) -> User | None:
        with self.db.session() as s:
            return s.get(User, user_id)

    def list_users(self) -> list[User]:
        with self.db.session() as s:
            return list(s.scalars(select(User).order_by(User.created_at)))

    def update_user(self, user_id: str, **values: object) -> User | None:
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                return None
            for key, value in values.items():
                setattr(user, key, value)
            if values.get("disabled"):
                _revoke_user_sessions(s, user_id, "user disabled")
        return user

    def delete_user(self, user_id: str) -> bool:
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                return False
            s.delete(user)
            return True

    # sessions --------------------------------------------------------------------------
    def create_session(self, session: AuthSession) -> None:
        with self.db.session() as s:
            s.add(session)

    def session_state(self, session_id: str) -> SessionState | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(_SESSION_STATE, {"sid": session_id}).first()
        if row is None:
            return None
        return SessionState(user=Caller(*row[:5]), revoked=row[5] is not None, current_jti=row[6])

    def rotate(self, session_id: str, spent_jti: str, new_jti: str) -> bool:
        """Move a session to its next refresh token; False when `spent_jti` was not current."""
        with self.db.session() as s:
            result = s.execute(
                update(AuthSession)
                .where(
                    AuthSession.id == session_id,
                    AuthSession.current_jti == spent_jti,
                    AuthSession.revoked_at.is_(None),
                )
                .values(current_jti=new_jti)
            )
            return result.rowcount == 1

    def revoke_session(self, session_id: str, reason: str) -> None:
        with self.db.session() as s:
            s.execute(
                update(AuthSession)
                .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_reason=reason)
            )

    # api keys --------------------------------------------------------------------------
    def create_api_key(self, key: ApiKey) -> None:
        with self.db.session() as s:
            s.add(key)

    def api_key_state(self, key_hash: str) -> KeyState | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(_KEY_STATE, {"hash": key_hash}).first()
        if row is None:
            return None
        return KeyState(user=Caller(*row[:5]), key_id=row[5], rate_limit_per_minute=row[6])

    def touch_api_key(self, key_id: str) -> None:
        with self.db.session() as s:
            s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))

    def list_api_keys(self, user_id: str) -> list[ApiKey]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)
                )
            )

    def delete_api_key(self, user_id: str, key_id: str) -> bool:
        with self.db.session() as s:
            key = s.get(ApiKey, key_id)
            if key is None or key.user_id != user_id:
                return False
            s.delete(key)
            return True

    # settings --------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        with self.db.session() as s:
            row = s.get(Setting, key)
            return row.value if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self.db.session() as s:
            s.merge(Setting(key=key, value=value))


def _revoke_user_sessions(s: Session, user_id: str, reason: str) -> None:
    s.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
