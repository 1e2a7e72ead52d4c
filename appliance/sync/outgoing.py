"""What leaves the box next: the unacknowledged records, as privacy allows them out."""
from __future__ import annotations

import dataclasses

from ..config import BoxConfig
from ..privacy import prepare_for_export
from ..records import InteractionRecord
from ..store import Outbox
from ..store.roster import Roster


@dataclasses.dataclass
class Outgoing:
    first_position: int
    last_position: int
    records: list[InteractionRecord]   # may be empty: every record in range was opted out


def next_outgoing(outbox: Outbox, config: BoxConfig, limit: int | None = None,
                  after: int | None = None) -> Outgoing | None:
    """The oldest ``limit`` unacknowledged records (past position ``after``), opted-out
    students dropped and free text scrubbed; None when nothing is left."""
    pending = outbox.pending(limit, after)
    if not pending:
        return None
    roster = Roster(config.roster_path)
    records = prepare_for_export([r for _, r in pending], roster.opted_out(), roster.nicknames())
    return Outgoing(pending[0][0], pending[-1][0], records)
