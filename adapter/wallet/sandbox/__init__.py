"""The wallet sandbox: a separate program speaking Alipay's OpenAPI v1 gateway protocol.

It has its own platform key pair and is reached by the adapter only over HTTP, as the real
platform is. ``hospital-adapter wallet-sandbox`` runs it (:func:`wallet_sandbox_command`);
tests build it with ``create_sandbox_app(SandboxState(...))`` and serve it on a real socket.

Paths: ``POST /gateway.do``; the wallet's pages ``GET /oauth2/publicAppAuthorize.htm`` (Alipay's
path; ``/oauth/authorize`` is an alias) and ``GET /cashier/<trade_no>`` (for desktop browsers,
where Alipay's JS bridge is missing); ``GET /bill/<token>.csv.zip``;
``GET /inbox/<user_id>``; helpers for tests and demos under ``/_sandbox/`` (users, auth_code,
faults, pay, finish, trades, notifications, platform_public_key, and for reconciliation
foreign_payment and console_refund).
"""

from adapter.wallet.sandbox.app import create_sandbox_app
from adapter.wallet.sandbox.cli import serve_sandbox, wallet_sandbox_command
from adapter.wallet.sandbox.protocol import GatewayError
from adapter.wallet.sandbox.state import SandboxState
from adapter.wallet.sandbox.users import Child, SandboxUser, seed_users

__all__ = [
    "Child",
    "GatewayError",
    "SandboxState",
    "SandboxUser",
    "create_sandbox_app",
    "seed_users",
    "serve_sandbox",
    "wallet_sandbox_command",
]
