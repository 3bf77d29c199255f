"""Fee payment's steps for use-case tests: the HIS's charges, a patient the HIS knows, paying
a bill, the wallet's notice, the outbox (on the Hospital helper of tests/unit/conftest.py)."""

from __future__ import annotations

from sqlalchemy import select

from adapter.billing.charges import charges_reported
from adapter.billing.paying import BillPayment, pay_bill
from adapter.models import Patient
from adapter.models_billing import Charge, Settlement
from adapter.ports_billing import ChargeLine, ChargesReported
from tests.fakes import FakeBillingHis


def his_patient(hospital, n: int = 1) -> tuple[int, str]:
    """A signed-in certified user whom the HIS knows; (account id, HIS patient id)."""
    account_id, patient_id = hospital.patient(n)
    his_id = f"P{n:06d}"
    with hospital.runtime.session_factory.begin() as session:
        session.get(Patient, patient_id).his_patient_id = his_id
    return account_id, his_id


def line(his_id: str, n: int, amount: int = 2500, group: str = "RX1",
         item: str = "LAB_CBC") -> ChargeLine:
    """A charge line the HIS lists."""
    return ChargeLine(f"C{his_id}-{n}", his_id, "V1", item, f"项目{n}", "1", amount, amount,
                      "PED", group)


def reported(hospital, his_id: str, *lines: ChargeLine, control_id: str = "M1") -> None:
    """The HIS sends charges (DFT^P03), as the inbound runner applies them."""
    his: FakeBillingHis = hospital.runtime.his
    for charge in lines:
        his.charges[charge.his_charge_id] = charge
    with hospital.runtime.session_factory.begin() as session:
        charges_reported(hospital.runtime, session,
                         ChargesReported(control_id, his_id, tuple(lines)), hospital.clock.now())


def charge_ids(hospital, *his_charge_ids: str) -> list[int]:
    with hospital.runtime.session_factory() as session:
        return [session.scalar(select(Charge.id).where(Charge.his_charge_id == h))
                for h in his_charge_ids]


def charge(hospital, his_charge_id: str) -> Charge:
    with hospital.runtime.session_factory() as session:
        return session.scalar(select(Charge).where(Charge.his_charge_id == his_charge_id))


def settlement(hospital, public_id: str) -> Settlement:
    with hospital.runtime.session_factory() as session:
        return session.scalar(select(Settlement).where(Settlement.public_id == public_id))


def pay(hospital, account_id: int, ids: list[int]) -> BillPayment:
    return pay_bill(hospital.runtime, account_id, ids, hospital.clock.now())


def paid_bill(hospital, account_id: int, ids: list[int]) -> BillPayment:
    """Pre-settled, paid in the wallet, the notice applied."""
    started = pay(hospital, account_id, ids)
    hospital.wallet.pay(started.out_trade_no)
    assert hospital.notify(started.out_trade_no) == "applied"
    return started
