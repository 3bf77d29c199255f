"""Fakes of the ports, for use-case tests."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from adapter.ports import (
    AppointmentRequest,
    ArrivalNotice,
    BillEntryKind,
    HisOutcome,
    HisSettlement,
    HisUnavailable,
    PatientIdentity,
    QueueSnapshot,
    SettlementChannel,
    SettlementKind,
    SettlementList,
    SlotRecord,
    TradeState,
    WalletBill,
    WalletBillEntry,
    WalletTrade,
)


class FakeClock:
    """A Clock that moves only when a test moves it."""

    def __init__(self, now: dt.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("a FakeClock keeps aware times")
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, **delta: float) -> dt.datetime:
        """Move forward by a timedelta's keywords (seconds=, minutes=...); returns the new now."""
        self._now += dt.timedelta(**delta)
        return self._now

    def set(self, moment: dt.datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("a FakeClock keeps aware times")
        self._now = moment


class FakeHis:
    """An in-memory HisGateway."""

    def __init__(self, slots: list[SlotRecord] | None = None) -> None:
        self.slots = list(slots or [])
        self.patients: dict[tuple[str, str], PatientIdentity] = {}
        self.down = False
        self.booked: list[AppointmentRequest] = []
        self.appointments: dict[str, str] = {}  # placer id -> filler id (idempotent on it)
        self.cancelled: list[str] = []
        self.refuse_with = ""  # an ERR-5 code to refuse the next bookings with
        self.refuse_cancel_with = ""  # an ERR-5 code to refuse the next cancellations with
        # The settlement list: with settle_fen set, each new booking posts a wallet payment and
        # each cancellation a wallet refund of that amount, at settle_at; tests add the rest.
        self.settlements: list[HisSettlement] = []
        self.settle_fen = 0
        self.settle_at: dt.datetime | None = None
        self.arrivals: list[ArrivalNotice] = []
        self.queues: dict[tuple[str, dt.date, str], QueueSnapshot] = {}  # the HIS's queues

    def _check(self) -> None:
        if self.down:
            raise HisUnavailable("fake HIS is down")

    def find_patient(self, document_type: str, document_number: str) -> PatientIdentity | None:
        self._check()
        return self.patients.get((document_type, document_number))

    def register_patient(self, patient: PatientIdentity) -> PatientIdentity:
        self._check()
        stored = PatientIdentity(**{**patient.__dict__,
                                    "his_patient_id": f"P{len(self.patients) + 1:06d}"})
        self.patients[(patient.document_type, patient.document_number)] = stored
        return stored

    def book_appointment(self, request: AppointmentRequest) -> HisOutcome:
        self._check()
        self.booked.append(request)
        if self.refuse_with:
            return HisOutcome(False, error_code=self.refuse_with, error_text="refused")
        new = request.placer_appointment_id not in self.appointments
        filler = self.appointments.setdefault(request.placer_appointment_id,
                                              f"F{len(self.appointments) + 1}")
        if new:
            self._settle(SettlementKind.PAYMENT, request.placer_appointment_id)
        return HisOutcome(True, filler_appointment_id=filler)

    def _settle(self, kind: SettlementKind, placer_id: str) -> None:
        if self.settle_fen:
            self.settlements.append(HisSettlement(
                f"H{len(self.settlements) + 1}", kind, SettlementChannel.WALLET,
                self.settle_fen, self.settle_at, placer_id=placer_id))

    def settlement_list(self, day: dt.date) -> SettlementList:
        self._check()
        zone = ZoneInfo("Asia/Shanghai")  # the hospital's zone of the tests
        return SettlementList(day, tuple(e for e in self.settlements
                                         if e.at.astimezone(zone).date() == day))

    def cancel_appointment(self, placer_appointment_id: str, filler_appointment_id: str,
                           his_slot_id: str) -> HisOutcome:
        self._check()
        if self.refuse_cancel_with:
            return HisOutcome(False, error_code=self.refuse_cancel_with, error_text="refused")
        self.cancelled.append(placer_appointment_id)
        self._settle(SettlementKind.REFUND, placer_appointment_id)
        return HisOutcome(True, filler_appointment_id=filler_appointment_id)

    def query_slot_pool(self, start: dt.date, end: dt.date) -> list[SlotRecord]:
        self._check()
        return [s for s in self.slots if start <= s.start_at.date() <= end]

    def query_queue(self, doctor_code: str, visit_date: dt.date, session: str) -> QueueSnapshot:
        self._check()
        return self.queues[(doctor_code, visit_date, session)]

    def patient_arrived(self, notice: ArrivalNotice) -> HisOutcome:
        self._check()
        self.arrivals.append(notice)
        return HisOutcome(True, filler_appointment_id=notice.filler_appointment_id)


class FakeWallet:
    """An in-memory WalletGateway with users behind auth codes."""

    platform = "fake"
    app_id = "APP"
    merchant_id = "SELLER"
    browser_marker = ""

    def __init__(self, platform: str = "fake", *, trade_no_at_creation: bool = True) -> None:
        from adapter.ports import WalletUser

        self.platform = platform
        # False plays a wallet that names its trade only once paid (WeChat Pay's prepay_id)
        self.trade_no_at_creation = trade_no_at_creation
        self.users: dict[str, WalletUser] = {}
        self.trades: dict[str, dict] = {}
        self.messages: list[tuple[str, str]] = []
        self.refund_requests: list[str] = []  # the out_request_no of every refund asked for
        self.refunds_pending = False  # refunds accepted but not yet done (fund_change "N")
        self.down = False  # every call fails with an unknown outcome
        self.unreachable = False  # every call fails before reaching the wallet
        self.refuse_create = False  # trade creation refused outright
        self.bill_at: dt.datetime | None = None
        self.bill_omit: set[str] = set()
        self.bill_extra: list[WalletBillEntry] = []
        self._user_type = WalletUser

    def add_user(self, auth_code: str, **fields) -> None:
        self.users[auth_code] = self._user_type(**fields)

    def display_name(self, locale: str) -> str:
        return "Fake Wallet" if locale.startswith("en") else "测试钱包"

    def sign_in_url(self, redirect_uri: str, state: str) -> str:
        return "https://wallet.example/authorize?" + urlencode(
            {"redirect_uri": redirect_uri, "state": state})

    def pay_parameters(self, out_trade_no: str, pay_reference: str, return_url: str) -> dict:
        return {"trade_no": pay_reference}

    def exchange_auth_code(self, auth_code: str):
        from adapter.ports import WalletRefused, WalletUnavailable

        if self.down:
            raise WalletUnavailable("fake wallet down")
        user = self.users.pop(auth_code, None)  # single use, like the platform's
        if user is None:
            raise WalletRefused("40002", "isv.code-invalid", "invalid auth code")
        return user

    def push_message(self, user_id: str, text: str, url: str = "") -> None:
        self._check()
        self.messages.append((user_id, text))

    def _check(self) -> None:
        from adapter.ports import WalletUnavailable, WalletUnreachable

        if self.unreachable:
            raise WalletUnreachable("fake wallet: no connection")
        if self.down:
            raise WalletUnavailable("fake wallet down")

    def create_trade(self, out_trade_no, total_fen, subject, buyer_id, expire_at):
        from adapter.ports import CreatedTrade, WalletRefused

        self._check()
        if self.refuse_create and out_trade_no not in self.trades:
            raise WalletRefused("40004", "ACQ.BUYER_NOT_EXIST", "refused", nothing_created=True)
        trade = self.trades.setdefault(out_trade_no, {
            "trade_no": f"T{len(self.trades) + 1:08d}", "total_fen": total_fen,
            "state": TradeState.CREATED, "refunds": {}})
        if not self.trade_no_at_creation:  # like WeChat Pay: a prepay reference, no trade_no
            return CreatedTrade(f"prepay-{trade['trade_no']}")
        return CreatedTrade(trade["trade_no"], trade["trade_no"])

    def pay(self, out_trade_no: str) -> None:
        """The buyer pays in the wallet (the notification is the test's business)."""
        self.trades[out_trade_no]["state"] = TradeState.PAID

    def _status(self, out_trade_no: str) -> WalletTrade:
        trade = self.trades.get(out_trade_no)
        if trade is None:
            return WalletTrade(out_trade_no, TradeState.NOT_FOUND)
        return WalletTrade(out_trade_no, trade["state"], trade["trade_no"], trade["total_fen"])

    def query_trade(self, out_trade_no: str):
        self._check()
        return self._status(out_trade_no)

    def close_trade(self, out_trade_no: str):
        self._check()
        trade = self.trades.get(out_trade_no)
        if trade is not None and trade["state"] is TradeState.CREATED:
            trade["state"] = TradeState.CLOSED
        return self._status(out_trade_no)

    def refund(self, out_trade_no, refund_fen, out_request_no, reason):
        from adapter.ports import RefundResult

        self.refund_requests.append(out_request_no)
        self._check()
        if self.refunds_pending:
            return RefundResult(out_trade_no, out_request_no, refund_fen, False)
        trade = self.trades[out_trade_no]
        trade["refunds"].setdefault(out_request_no, refund_fen)  # same request, one refund
        return RefundResult(out_trade_no, out_request_no, refund_fen, True)

    def download_trade_bill(self, bill_date: dt.date) -> WalletBill:
        """Every paid trade and every refund, at ``bill_at`` (noon of the day by default),
        minus ``bill_omit`` (out_trade_no / out_request_no), plus ``bill_extra``."""
        self._check()
        at = self.bill_at or dt.datetime.combine(bill_date, dt.time(12), dt.UTC)
        entries = []
        for out_trade_no, trade in self.trades.items():
            if trade["state"] is TradeState.PAID and out_trade_no not in self.bill_omit:
                entries.append(WalletBillEntry(BillEntryKind.PAYMENT, out_trade_no,
                                               trade["trade_no"], trade["total_fen"], at))
            for request_no, fen in trade["refunds"].items():
                if request_no not in self.bill_omit:
                    entries.append(WalletBillEntry(BillEntryKind.REFUND, out_trade_no,
                                                   trade["trade_no"], fen, at, request_no))
        return WalletBill(bill_date, iter(entries + list(self.bill_extra)))

    def refunded_fen(self, out_trade_no: str) -> int:
        return sum(self.trades[out_trade_no]["refunds"].values())


def sign_in(client, auth_code: str, lang: str = ""):
    """POST /api/v1/session the way the pages do: login-url first (it sets the state)."""
    state = client.get("/api/v1/session/login-url?redirect_uri=http://127.0.0.1/h5/").json["state"]
    suffix = f"?lang={lang}" if lang else ""
    return client.post(f"/api/v1/session{suffix}", json={"auth_code": auth_code, "state": state})


class FakeBillingHis(FakeHis):
    """FakeHis with the HIS's cash desk: charges, locks, commits, status, settlement list.

    Knobs: ``down`` (every call unknown), ``lose_commit_answers`` (that many commits are made
    and their answers lost), ``refuse_commit_with`` (an ERR-5 code), ``paid_at_window`` (charge
    ids the window took, racing the wallet).
    """

    def __init__(self, slots: list[SlotRecord] | None = None) -> None:
        super().__init__(slots)
        self.charges: dict[str, object] = {}  # his_charge_id -> ChargeLine
        self.locks: dict[str, str] = {}  # his_charge_id -> settlement no
        self.receipts: dict[str, object] = {}  # settlement no -> Receipt
        self.committed_fen: dict[str, int] = {}  # settlement no -> amount posted
        self.commits = 0  # commit messages that reached the HIS
        self.lose_commit_answers = 0
        self.refuse_commit_with = ""
        self.paid_at_window: set[str] = set()
        self.released: list[str] = []
        self.amount_changes: dict[str, int] = {}  # his_charge_id -> the HIS's new amount

    def query_charges(self, his_patient_id: str, visit_number: str = "") -> list:
        self._check()
        return [c for i, c in self.charges.items() if c.his_patient_id == his_patient_id
                and i not in self.paid_at_window and i not in self.locks]

    def pre_settle(self, request):
        from adapter.ports import HisRefused
        from adapter.ports_billing import PreSettled

        self._check()
        for charge_id in request.his_charge_ids:
            reason = ""
            if charge_id not in self.charges:
                reason = "CHARGE_UNKNOWN"
            elif charge_id in self.paid_at_window:
                reason = "CHARGE_PAID"
            elif self.locks.get(charge_id, request.settlement_no) != request.settlement_no:
                reason = "CHARGE_LOCKED"
            if reason:
                raise HisRefused(HisOutcome(False, error_code=reason, error_text="refused",
                                            details={"charge": charge_id}))
        amounts = {}
        self.lock_until = request.lock_until
        for charge_id in request.his_charge_ids:
            self.locks[charge_id] = request.settlement_no
            amounts[charge_id] = self.amount_changes.get(charge_id,
                                                         self.charges[charge_id].amount_fen)
        return PreSettled(request.settlement_no, amounts, sum(amounts.values()))

    def commit_settlement(self, request):
        from adapter.ports import HisRefused
        from adapter.ports_billing import Receipt

        self._check()
        if request.settlement_no not in self.receipts:
            held = [i for i, s in self.locks.items() if s == request.settlement_no]
            if self.refuse_commit_with or not held or set(held) & self.paid_at_window:
                code = self.refuse_commit_with or ("CHARGE_PAID" if held else "NOT_LOCKED")
                raise HisRefused(HisOutcome(False, error_code=code, error_text="refused"))
            self.commits += 1
            self.receipts[request.settlement_no] = Receipt(
                f"RC{len(self.receipts) + 1:06d}", f"INV{len(self.receipts) + 1:06d}", "CHK")
            self.committed_fen[request.settlement_no] = request.total_fen
        if self.lose_commit_answers:
            self.lose_commit_answers -= 1
            raise HisUnavailable("fake HIS: commit answer lost")
        return self.receipts[request.settlement_no]

    def settlement_status(self, settlement_no: str):
        from adapter.ports_billing import SettlementAtHis, SettlementState

        self._check()
        if settlement_no in self.receipts:
            return SettlementAtHis(SettlementState.COMMITTED, self.receipts[settlement_no])
        if settlement_no in self.locks.values():
            return SettlementAtHis(SettlementState.LOCKED)
        return SettlementAtHis(SettlementState.NOT_FOUND)

    def release_settlement(self, settlement_no: str) -> None:
        self._check()
        if settlement_no not in self.receipts:
            self.locks = {i: s for i, s in self.locks.items() if s != settlement_no}
        self.released.append(settlement_no)

    def bill_settlement_list(self, day: dt.date) -> list:
        self._check()
        return []


class FakeSms:
    """An in-memory SmsSender: what each phone received."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.down = False

    def send(self, phone: str, text: str) -> None:
        from adapter.ports_identity import RegistryUnavailable

        if self.down:
            raise RegistryUnavailable("fake SMS gateway down")
        self.sent.append((phone, text))

    def last_code(self, phone: str) -> str:
        """The 6-digit code of the last message to the phone."""
        import re

        text = next(text for to, text in reversed(self.sent) if to == phone)
        return re.search(r"[0-9]{6}", text).group(0)


class FakeHealthCards:
    """An in-memory HealthCardRegistry: card code -> the card's person."""

    def __init__(self) -> None:
        self.cards: dict = {}
        self.down = False

    def add(self, card: str, **fields) -> None:
        from adapter.ports_identity import HealthCardIdentity

        self.cards[card] = HealthCardIdentity(card_id=card, **fields)

    def look_up(self, card: str):
        from adapter.ports_identity import RegistryUnavailable

        if self.down:
            raise RegistryUnavailable("fake registry down")
        return self.cards.get(card)
