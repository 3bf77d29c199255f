"""A HIS simulator: a separate program the adapter reaches over MLLP only, as it would a real HIS.

``hospital-adapter simulate-his`` runs it (:func:`simulate_his_command`); tests build a
:class:`HisSimulator` and serve it on a real socket (:func:`serve`) or call its ``handle``.
core.py holds its state and business, wire.py the HIS's side of each message, cli.py the command.
"""

from adapter.his.simulator.cli import DEFAULT_LISTEN, serve, simulate_his_command
from adapter.his.simulator.core import CLINIC_CLOSED, SLOT_TAKEN, Appointment, HisSimulator

__all__ = [
    "CLINIC_CLOSED",
    "DEFAULT_LISTEN",
    "SLOT_TAKEN",
    "Appointment",
    "HisSimulator",
    "serve",
    "simulate_his_command",
]
