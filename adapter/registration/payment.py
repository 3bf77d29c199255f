"""Paying for a held booking: one wallet trade per booking, named after it."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from adapter.db import write_transaction
from adapter.flows import Services
from adapter.identity.binding import require_certified
from adapter.models import BookingStatus, WalletAccount
from adapter.payments.trades import create_at_wallet, open_trade
from adapter.ports import WalletRefused
from adapter.refusals import Refusal
from adapter.registration.booking import lock_booking, own_booking

logger = logging.getLogger(__name__)

PURPOSE = "registration"


@dataclass(frozen=True)
class PaymentStarted:
    """The trade the patient pays a booking with, created at its wallet."""

    out_trade_no: str
    trade_no: str  # the platform's, "" when it gives one only once paid
    total_fen: int
    platform: str
    pay_reference: str = ""  # what the wallet's payment call takes


def pay_booking(services: Services, account_id: int, public_id: str,
                now: dt.datetime) -> PaymentStarted:
    """Create (or return) the wallet trade that pays a held booking.

    Raises Refusal (unknown or not payable) or WalletUnavailable (unknown outcome: retrying is
    safe, the wallet dedupes the out_trade_no).
    """
    with services.session_factory.begin() as session:
        write_transaction(session)
        require_certified(session, account_id)
        booking = own_booking(session, account_id, public_id)
        if booking is None:
            raise Refusal("booking.unknown")
        booking = lock_booking(session, id=booking.id)
        if booking.status != BookingStatus.PENDING_PAYMENT or booking.hold_expires_at <= now:
            raise Refusal("booking.not_payable")
        department = services.mappings.departments.get(booking.department_code)
        trade = open_trade(
            session, out_trade_no=booking.out_trade_no or f"R{booking.public_id}",
            purpose=PURPOSE, reference=booking.public_id,
            subject=f"挂号费 {department.name_zh if department else ''}".strip(),
            total_fen=booking.fee_fen, account=session.get(WalletAccount, account_id),
            expire_at=booking.hold_expires_at)
        booking.out_trade_no = trade.out_trade_no
    try:
        created = create_at_wallet(services, trade)
    except WalletRefused as exc:
        logger.warning("trade %s refused by the wallet: %s %s", trade.out_trade_no, exc.code,
                       exc.sub_code)
        raise Refusal("booking.not_payable") from None
    return PaymentStarted(trade.out_trade_no, created.trade_no, trade.total_fen, trade.platform,
                          created.pay_reference)
