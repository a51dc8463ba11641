"""Re-sealing every stored secret with the newest key (K3, ``flask rotate-keys``).

Reading a secret sealed with an older key already re-seals it lazily during a sync; this does
all of them at once, so the old key can be removed from ``SLOTBOOK_ENCRYPTION_KEYS`` straight
after.
"""

from __future__ import annotations

from sqlalchemy import select

from app.connections.models import Connection
from app.database import begin_write
from app.extensions import db
from app.outbox import reseal_pending


def reseal_all() -> tuple[int, int]:
    """Re-seal every connection secret, webhook signing secret, and the links of outbox rows
    not delivered yet, not sealed with the newest key; commit.

    Returns (re-sealed, secrets in total). A secret that no configured key opens raises
    ``DecryptionError`` and nothing is saved, so a missing old key is noticed, not hidden.
    """
    begin_write()
    connections = db.session.scalars(
        select(Connection).where(Connection.secret_sealed.is_not(None))
    ).all()
    resealed = sum(1 for connection in connections if connection.reseal_if_old())
    links_resealed, links = reseal_pending()
    from app.webhooks.service import reseal_secrets  # webhook signing secrets, same keys

    hooks_resealed, hooks = reseal_secrets()
    db.session.commit()
    return resealed + links_resealed + hooks_resealed, len(connections) + links + hooks
