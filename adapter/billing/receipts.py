"""What the patient sees of a bill they paid: its state, lines, split, the HIS's receipt and
where to go next."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapter.billing.paying import lines_of
from adapter.billing.stops import NextStop, next_stops
from adapter.models_billing import Charge, Settlement, SettlementLine, SettlementStatus


@dataclass(frozen=True)
class BillView:
    """A settlement with its lines and next stops."""

    settlement: Settlement
    lines: list[tuple[SettlementLine, Charge]]
    next_stops: list[NextStop]


def own_settlement(session: Session, account_id: int, public_id: str) -> Settlement | None:
    """One of the account's settlements; someone else's is as good as absent (invariant 7)."""
    settlement = session.scalar(select(Settlement).where(Settlement.public_id == public_id))
    if settlement is None or settlement.wallet_account_id != account_id:
        return None
    return settlement


def bill_view(session: Session, settlement: Settlement,
              stops: dict[tuple[str, str], NextStop]) -> BillView:
    """The settlement as the receipt page shows it (next stops once it is committed)."""
    lines = lines_of(session, settlement)
    places = next_stops(stops, [(c.item_kind, c.department_code) for _l, c in lines]) \
        if settlement.status == SettlementStatus.COMMITTED else []
    return BillView(settlement, lines, places)


def recent_settlements(session: Session, account_id: int, limit: int = 50) -> list[Settlement]:
    """The account's paid or paying bills, newest first."""
    return list(session.scalars(
        select(Settlement).where(Settlement.wallet_account_id == account_id,
                                 Settlement.status.not_in((SettlementStatus.LOCKING,
                                                           SettlementStatus.REFUSED)))
        .order_by(Settlement.id.desc()).limit(limit)))
