"""Payments: the wallet trade that pays a held booking or a bill, and what the page needs to
pay it."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from adapter.billing.paying import pay_bill
from adapter.i18n import N_
from adapter.money import yuan
from adapter.ports import HisUnavailable, WalletUnavailable
from adapter.refusals import Refusal
from adapter.registration.payment import pay_booking
from adapter.web.api.bookings import REFUSAL_STATUS
from adapter.web.api.errors import (
    account_wallet,
    error,
    now,
    refused,
    runtime,
    say,
    signed_in,
    wallet_unavailable,
)
from adapter.web.api.schemas import PaymentBody
from adapter.web.api.validation import body

bp = Blueprint("payments", __name__)


@bp.post("/payments")
@signed_in
def create_payment(account_id: int) -> ResponseReturnValue:
    """Create (or return) the wallet trade that pays a held booking or a bill."""
    asked = body(PaymentBody)
    rt = runtime()
    try:
        if asked.charge_ids:
            started = pay_bill(rt, account_id, list(asked.charge_ids), now())
        else:
            started = pay_booking(rt, account_id, asked.booking_id, now())
    except Refusal as refusal:
        return refused(refusal, REFUSAL_STATUS.get(refusal.code, 422))
    except WalletUnavailable:
        return wallet_unavailable(account_wallet(rt, account_id))
    except HisUnavailable:
        return error("his.unavailable", say(N_("医院系统暂时无法访问，请稍后再试")), 503)
    wallet = rt.wallet_for(started.platform)
    pay = wallet.pay_parameters(started.out_trade_no, started.pay_reference, asked.return_url)
    # trade_no: the platform's number when it gave one at creation (Alipay's, which tradePay
    # takes); "" for WeChat Pay, whose page pays with ``pay`` (the prepay_id's package).
    return jsonify(out_trade_no=started.out_trade_no, trade_no=started.trade_no,
                   amount=yuan(started.total_fen), cashier_url=pay.get("cashier_url"),
                   platform=wallet.platform, pay=pay,
                   bill_id=getattr(started, "public_id", None)), 201
