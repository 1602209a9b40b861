"""Encrypted credentials by name (the encryption is the caller's job: see runner.credentials)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from ml_connector.store import schema as t
from ml_connector.store.rows import utcnow
from ml_connector.store.source import Repository

_c = t.credentials.c


class CredentialRepository(Repository):
    def get(self, name: str) -> bytes | None:
        """The stored ciphertext for ``name``."""
        with self._source.reading() as conn:
            row = conn.execute(select(_c.ciphertext).where(self._mine(t.credentials), _c.name == name)).first()
        return bytes(row[0]) if row else None

    def put(self, name: str, ciphertext: bytes) -> None:
        """Replace ``name`` in one transaction, so a reader sees the old or the new value, never neither."""
        with self._source.writing() as conn:
            done = conn.execute(
                update(t.credentials)
                .where(self._mine(t.credentials), _c.name == name)
                .values(ciphertext=ciphertext, updated_at=utcnow())
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(t.credentials).values(
                        connection=self.connection, name=name, ciphertext=ciphertext, updated_at=utcnow()
                    )
                )

    def delete(self, name: str) -> bool:
        """Forget ``name``; whether there was one. The ciphertext is not read, so a lost key does not matter."""
        with self._source.writing() as conn:
            return bool(conn.execute(delete(t.credentials).where(self._mine(t.credentials), _c.name == name)).rowcount)
