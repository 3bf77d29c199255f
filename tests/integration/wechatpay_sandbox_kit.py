"""The WeChat Pay sandbox on a real socket, and an independent merchant written here with
`cryptography` from the v3 documents (not with the sandbox's code), plus a callback receiver."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapter.wallet.wechatpay_sandbox import WechatSandboxState, serve_wechatpay_sandbox

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
APP_SECRET = "s3cr3t-of-the-official-account"
APIV3_KEY = "a12d3924fd499edac8a5efc4e1a2b3c4"  # 32 characters
SCALE = 0.0001  # 15 s -> 1.5 ms; the 24 h schedule in about 9 s


@dataclass
class Merchant:
    """The merchant's API key and certificate (made here, as the merchant platform issues)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "X")

    @property
    def private_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


def make_merchant() -> Merchant:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{MCHID} merchant")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    return Merchant(key, cert)


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(),
                                     hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def decrypt(resource: dict) -> str:
    return AESGCM(APIV3_KEY.encode()).decrypt(
        resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
        resource["associated_data"].encode()).decode()


class Sandbox:
    """The sandbox served on 127.0.0.1:0 in a thread."""

    def __init__(self, merchant: Merchant, **options: object) -> None:
        options.setdefault("notify_time_scale", SCALE)
        self.state = WechatSandboxState(
            merchant_public_key=merchant.key.public_key(), merchant_serial=merchant.serial,
            apiv3_key=APIV3_KEY, mchid=MCHID, appid=APPID, app_secret=APP_SECRET, seed=7,
            **options)
        self.server = serve_wechatpay_sandbox(self.state, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.state.public_url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.state.platform_private_key.public_key()

    def openid(self, index: int = 0) -> str:
        return list(self.state.users)[index]

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.state.close()


class Client:
    """A v3 merchant client from the documents: signs requests, verifies answers."""

    def __init__(self, sandbox: Sandbox, merchant: Merchant) -> None:
        self.sandbox, self.merchant = sandbox, merchant

    def call(self, method: str, path: str, body: dict | None = None, *,
             timestamp: int | None = None, serial: str | None = None,
             key: rsa.RSAPrivateKey | None = None, sent_body: str | None = None,
             headers: dict | None = None) -> requests.Response:
        text = "" if body is None else json.dumps(body, ensure_ascii=False)
        ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(16).upper()
        signature = rsa_sign(key or self.merchant.key,
                             f"{method}\n{path}\n{ts}\n{nonce}\n{text}\n")
        authorization = (f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{nonce}",'
                         f'signature="{signature}",timestamp="{ts}",'
                         f'serial_no="{serial or self.merchant.serial}"')
        data = (sent_body if sent_body is not None else text).encode()
        return requests.request(method, self.sandbox.url + path, data=data or None, timeout=10,
                                headers={"Authorization": authorization, "Accept":
                                         "application/json", "Content-Type": "application/json",
                                         **(headers or {})})

    def verified(self, response: requests.Response,
                 key: rsa.RSAPublicKey | None = None) -> bool:
        h = response.headers
        message = f"{h['Wechatpay-Timestamp']}\n{h['Wechatpay-Nonce']}\n{response.text}\n"
        return (h["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
                and rsa_verify(key or self.sandbox.public_key, message,
                               h["Wechatpay-Signature"]))

    def jsapi(self, out_trade_no: str, total: int = 2500, openid: str = "",
              notify_url: str = "https://hospital.example/notify/wechatpay",
              description: str = "挂号费-内科") -> requests.Response:
        return self.call("POST", "/v3/pay/transactions/jsapi", {
            "appid": APPID, "mchid": MCHID, "description": description,
            "out_trade_no": out_trade_no, "notify_url": notify_url,
            "amount": {"total": total, "currency": "CNY"},
            "payer": {"openid": openid or self.sandbox.openid()}})

    def pay(self, out_trade_no: str) -> dict:
        response = requests.post(f"{self.sandbox.url}/_sandbox/pay",
                                 json={"out_trade_no": out_trade_no}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class Receiver:
    """The merchant's notify_url: answers 500 ``failures`` times, then 204."""

    failures: int = 0
    received: list[tuple[dict, str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify/wechatpay"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    @Request.application
    def wsgi(self, request: Request) -> Response:
        with self._lock:
            self.received.append((dict(request.headers), request.get_data(as_text=True),
                                  time.monotonic()))
            if len(self.received) <= self.failures:
                return Response('{"code":"FAIL","message":"busy"}', status=500,
                                content_type="application/json")
        return Response(status=204)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict, str, float]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.005)
        raise AssertionError(f"expected {count} callbacks, got {len(self.received)}")

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def merchant() -> Merchant:
    return make_merchant()


@pytest.fixture
def sandbox(merchant: Merchant):
    sandbox = Sandbox(merchant)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def client(sandbox: Sandbox, merchant: Merchant) -> Client:
    return Client(sandbox, merchant)
