"""Servers for the security tests: each a real ``codeq serve`` on 127.0.0.1.

- ``sqlite_server``: dev mode on SQLite (dev tokens, ``X-Role: ADMIN`` honoured);
- ``redis_store`` / ``redis_server``: a private redis-server that demands a password,
  and a dev-mode server on it;
- ``prod_server``: ``env: prod`` on that Redis with static producer tokens, worker
  JWTs from a JWKS served by this test process, a webhook HMAC secret and JSON
  logs at debug level; ``secrets`` lists everything that must never be logged.
"""

from __future__ import annotations

import secrets as random_secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from codeq.testing.redis_server import RedisServer, command, free_port
from codeq.testing.server import ServerProcess
from tests.unit.test_jwt import WORKER_ISSUER, JwksServer, SigningKey, worker_claims

#: Small enough that the 413 checks stay quick, large enough for 10 KB strings.
MAX_BODY_BYTES = 256 * 1024
REDIS_PASSWORD = "redis-pw-" + random_secrets.token_hex(12)


@dataclass
class PasswordRedis(RedisServer):
    """A private redis-server with ``requirepass``."""

    password: str = REDIS_PASSWORD

    def args(self) -> list[str]:
        return [*super().args(), "--requirepass", self.password]

    def ping(self) -> str:
        reply = command(self.port, "PING", timeout=0.5)
        return "PONG" if reply.startswith("-NOAUTH") else reply

    @property
    def url(self) -> str:
        return self.database(0)

    def database(self, number: int) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{number}"

    def keys(self) -> list[str]:
        """Every key in the server (SCAN, authenticated), for the key-injection checks."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password)
        try:
            return sorted(k.decode(errors="backslashreplace") for k in client.scan_iter(count=1000))
        finally:
            client.close()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("sqlite"),
                             config={"maxBodyBytes": MAX_BODY_BYTES}) as server:
        yield server


@pytest.fixture(scope="session")
def redis_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordRedis]:
    server = PasswordRedis(tmp_path_factory.mktemp("redis-data"), free_port())
    server.launch()
    with server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory,
                 redis_store: PasswordRedis) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("redis-serve"), storage=redis_store.url,
                             config={"maxBodyBytes": MAX_BODY_BYTES}) as server:
        yield server


@dataclass
class ProdServer:
    server: ServerProcess
    worker_key: SigningKey
    static_token: str
    admin_token: str
    hmac_secret: str

    def worker_token(self, **claims: Any) -> str:
        return self.worker_key.sign(worker_claims(**claims))

    @property
    def secrets(self) -> dict[str, str]:
        return {"static producer token": self.static_token,
                "static admin token": self.admin_token,
                "webhook HMAC secret": self.hmac_secret,
                "redis password": REDIS_PASSWORD}


@pytest.fixture(scope="session")
def prod_server(tmp_path_factory: pytest.TempPathFactory,
                redis_store: PasswordRedis) -> Iterator[ProdServer]:
    idp = JwksServer()
    worker_key = SigningKey.ec("security-worker")
    identity_key = SigningKey.ec("security-identity")
    config = {
        "env": "prod", "logFormat": "json", "logLevel": "debug",
        "workerJwksUrl": idp.serve("/worker/jwks.json", worker_key),
        "workerIssuer": WORKER_ISSUER,
        "identityJwksUrl": idp.serve("/identity/jwks.json", identity_key),
        "producerTokens": [static := "static-" + random_secrets.token_hex(16),
                           {"token": (admin := "admin-" + random_secrets.token_hex(16)),
                            "sub": "ops", "admin": True}],
        "webhookHmacSecret": (hmac_secret := "hmac-" + random_secrets.token_hex(16)),
        "webhookAllowPrivateNetworks": True,
    }
    try:
        # Its own database: servers sharing a store must share their settings too (the
        # dev server would deliver this one's durable callbacks, unsigned).
        with ServerProcess.start(tmp_path_factory.mktemp("prod"), storage=redis_store.database(1),
                                 config=config) as server:
            yield ProdServer(server, worker_key, static, admin, hmac_secret)
    finally:
        idp.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest) -> ServerProcess:
    """Each store-touching test runs on both stores; checks made before the store is
    reached (``STORE_INDEPENDENT``) run on SQLite only."""
    found: ServerProcess = request.getfixturevalue(f"{request.param}_server")
    return found


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=30.0) as client:
        yield client


#: For a test whose check is made before the store is reached: SQLite alone.
STORE_INDEPENDENT = pytest.mark.parametrize("server", ["sqlite"], indirect=True)


def new_command() -> str:
    """A command of its own for one test (the servers are shared by the module)."""
    return f"S_{uuid.uuid4().hex[:12]}"


def post_raw(api: httpx.Client, headers: dict[str, str], body: bytes, path: str = "/tasks",
             content_type: str | None = "application/json") -> httpx.Response:
    """POST ``body`` exactly as given (bytes a JSON encoder would not write)."""
    extra = {"Content-Type": content_type} if content_type else {}
    return api.post(path, content=body, headers={**headers, **extra})
