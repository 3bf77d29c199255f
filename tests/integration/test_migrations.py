"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapter import migrate
from adapter.db import Base


def test_models_and_migrations_agree(engine):
    assert not migrate.pending(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_outbox_rows_keep_their_subjects_across_0004(tmp_path):
    """Items queued before 0004 (booking_id) name the same subject after it."""
    import json

    from sqlalchemy import text

    from adapter.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0003")
    now = "2026-12-01 08:00:00.000000"
    with engine.begin() as c:
        c.execute(text("INSERT INTO wallet_account (id, platform, user_id, is_certified, "
                       "created_at, last_login_at) VALUES (3, 'alipay', 'U1', 1, :now, :now)"),
                  {"now": now})
        c.execute(text("INSERT INTO slot (id, his_slot_id, department_code, doctor_code, "
                       "service_code, start_at, end_at, capacity, booked, fee_fen, status, "
                       "synced_at) VALUES (1, 'S1', 'PED', 'D1', 'REG', :now, :now, 1, 1, "
                       "2500, 'open', :now)"), {"now": now})
        c.execute(text("INSERT INTO patient (id, wallet_account_id, relation, name, "
                       "document_type, document_number_enc, document_index, document_masked, "
                       "sex, phone_masked, created_at) VALUES (7, 3, 'self', 'x', "
                       "'RESIDENT_ID', x'00', 'idx', 'm', 'M', '', :now)"), {"now": now})
        c.execute(text("INSERT INTO booking (id, public_id, wallet_account_id, patient_id, "
                       "patient_document_index, slot_id, department_code, doctor_code, "
                       "visit_date, fee_fen, status, status_reason, out_trade_no, "
                       "hold_expires_at, slot_held, created_at, updated_at) VALUES (42, "
                       "'B1', 3, 7, 'idx', 1, 'PED', 'D1', '2026-12-02', 2500, 'confirmed', "
                       "'', 'RB1', :now, 1, :now, :now)"), {"now": now})
        rows = [("his_book", 42, {}), ("his_cancel", 42, {"his_slot_id": "S1"}),
                ("close_trade", 42, {}), ("refund", 42, {"out_request_no": "RB1-R1"}),
                ("push", 42, {"message_kind": "confirmed", "text": "t"}),
                ("his_patient", None, {"patient_id": 7})]
        for kind, booking_id, payload in rows:
            c.execute(text("INSERT INTO outbox_message (kind, booking_id, payload, status, "
                           "attempts, next_attempt_at, last_error, created_at) VALUES (:k, :b, "
                           ":p, 'pending', 0, :now, '', :now)"),
                      {"k": kind, "b": booking_id, "p": json.dumps(payload), "now": now})
    migrate.upgrade(engine)
    with engine.connect() as c:
        got = {kind: (subject_type, subject_id, json.loads(payload))
               for kind, subject_type, subject_id, payload in c.execute(text(
                   "SELECT kind, subject_type, subject_id, payload FROM outbox_message"))}
    assert got["his_book"][:2] == ("booking", "42")
    assert got["his_cancel"] == ("booking", "42", {"his_slot_id": "S1"})
    assert got["close_trade"][:2] == ("trade", "RB1")
    assert got["refund"][:2] == ("refund", "RB1-R1")
    assert got["push"] == ("wallet_account", "3", {"message_kind": "confirmed", "text": "t",
                                                   "path": "/h5/bookings/B1"})
    assert got["his_patient"][:2] == ("patient", "7")


def test_dependant_links_carry_over_to_0006_unverified_and_self_verified(tmp_path):
    """Self links are verified by self; dependants are unverified, and one whose HIS record
    may have been added by the adapter is marked so (it verifies nobody)."""
    from sqlalchemy import text

    from adapter.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0004")
    now = "2026-12-01 08:00:00.000000"
    with engine.begin() as c:
        c.execute(text("INSERT INTO wallet_account (id, platform, user_id, is_certified, "
                       "created_at, last_login_at) VALUES (3, 'alipay', 'U1', 1, :now, :now)"),
                  {"now": now})
        for pid, relation, index, his_id in ((7, "self", "a", "H1"), (8, "child", "b", "H2"),
                                             (9, "child", "c", None)):
            c.execute(text("INSERT INTO patient (id, wallet_account_id, relation, name, "
                           "document_type, document_number_enc, document_index, "
                           "document_masked, sex, phone_masked, his_patient_id, created_at) "
                           "VALUES (:id, 3, :relation, 'x', 'RESIDENT_ID', x'00', :index, 'm', "
                           "'M', '', :his, :now)"),
                      {"id": pid, "relation": relation, "index": index, "his": his_id,
                       "now": now})
    migrate.upgrade(engine)
    with engine.connect() as c:
        got = {row[0]: tuple(row[1:]) for row in c.execute(text(
            "SELECT id, verification, verified_at IS NOT NULL, his_added FROM patient"))}
    assert got == {7: ("self", 1, 0), 8: ("unverified", 0, 1), 9: ("unverified", 0, 0)}
