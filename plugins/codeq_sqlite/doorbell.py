"""``Doorbell``: wake the claims waiting in the other processes that share one SQLite file.

Every open store binds a Unix datagram socket in ``<database file>.wake/``
(mode 0700), named after its process and a random suffix. After a commit that
made work ready, the store rings: it sends the commands, newline-separated,
to every other socket in that directory, and each receiver wakes its waiting
claims as it would for a create of its own. Ringing never blocks and never
fails the store call: a peer whose queue is full is skipped (its
``PRAGMA data_version`` poll still catches the commit), and a socket file
nobody listens on any more (its process died) is removed.

Listing the directory on every ring would cost more than the ring itself, so
the list of peers is read again only when the directory's mtime changed, a
send failed, or ``PEER_REFRESH_SECONDS`` passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from codeq.core.domain import COMMAND_PATTERN

log = logging.getLogger("codeq.sqlite")

SUFFIX = ".sock"
#: Longest datagram sent or read (the smallest limit among the usual systems); a command
#: is at most 128 bytes, so many fit in one.
MAX_DATAGRAM = 2048
#: At most this long between two listings of the peers, even when the mtime looks unchanged
#: (a coarse mtime may miss a peer that arrived right after a listing).
PEER_REFRESH_SECONDS = 1.0


def wake_dir(db_path: Path) -> Path:
    """The directory where the stores sharing ``db_path`` bind their sockets."""
    return db_path.with_name(db_path.name + ".wake")


def datagrams(commands: Iterable[str]) -> list[bytes]:
    """``commands`` newline-separated, packed into datagrams of at most ``MAX_DATAGRAM`` bytes."""
    packed: list[bytes] = []
    part = b""
    for command in sorted(commands):
        encoded = command.encode()
        if part and len(part) + 1 + len(encoded) > MAX_DATAGRAM:
            packed.append(part)
            part = b""
        part = part + b"\n" + encoded if part else encoded
    if part:
        packed.append(part)
    return packed


def commands_in(datagram: bytes) -> list[str]:
    """The well-formed command names in a received datagram (anything else is ignored)."""
    text = datagram.decode("ascii", errors="replace")
    return [name for name in text.split("\n") if COMMAND_PATTERN.match(name)]


class Doorbell:
    """One store's socket in the wake directory: rings the peers and hears their rings."""

    def __init__(self, sock: socket.socket, directory: Path, own: str) -> None:
        self._sock: socket.socket | None = sock
        self._dir = directory
        self._own = own
        self._peers: list[str] = []
        self._listed_mtime: int | None = None
        self._list_due = 0.0
        self._pending: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def bind(cls, db_path: Path) -> Doorbell | None:
        """Bind a socket for the store of ``db_path``; None (logged) when that is impossible.

        The store then relies on its ``PRAGMA data_version`` poll alone.
        """
        if not hasattr(socket, "AF_UNIX"):  # no Unix sockets on this system: poll only
            return None
        directory = wake_dir(db_path.resolve())
        own = str(directory / f"{os.getpid()}-{secrets.token_hex(6)}{SUFFIX}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            sock.setblocking(False)
            sock.bind(own)
        except OSError as exc:
            sock.close()
            log.warning("no instant wake-ups between the processes sharing %s (socket %s: "
                        "%s); they notice each other's commits by polling instead",
                        db_path, own, exc)
            return None
        return cls(sock, directory, own)

    def listen(self, on_ring: Callable[[str], None]) -> None:
        """Call ``on_ring(command)`` on the running loop for each command a peer rings."""
        assert self._sock is not None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._receive, self._sock, on_ring)

    def ring(self, commands: Iterable[str]) -> None:
        """Tell the peers that ``commands`` have ready work.

        The rings of one event-loop turn (the steps of one group commit) go out
        together in one datagram per peer.
        """
        if self._sock is None or self._loop is None:
            return
        if not self._pending:
            self._loop.call_soon(self._send_pending)
        self._pending.update(commands)

    def close(self) -> None:
        """Send what is still pending, stop listening, remove this store's socket file."""
        self._send_pending()
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self._own)

    # -- internals ----------------------------------------------------------------
    @staticmethod
    def _receive(sock: socket.socket, on_ring: Callable[[str], None]) -> None:
        while True:
            try:
                datagram = sock.recv(MAX_DATAGRAM)
            except OSError:  # drained (BlockingIOError), or the socket closed under us
                return
            for command in commands_in(datagram):
                on_ring(command)

    def _send_pending(self) -> None:
        sock, pending = self._sock, self._pending
        if sock is None or not pending:
            pending.clear()
            return
        self._pending = set()
        packed = datagrams(pending)
        for peer in self._current_peers():
            for datagram in packed:
                if not self._send(sock, peer, datagram):
                    break

    def _send(self, sock: socket.socket, peer: str, datagram: bytes) -> bool:
        """Send one datagram; False when this peer should get no more of this ring."""
        try:
            sock.sendto(datagram, peer)
        except BlockingIOError:  # its queue is full: it is busy, and its poll catches up
            return False
        except ConnectionRefusedError:  # nobody listens there: its process is gone
            self._remove_stale(peer)
            self._list_due = 0.0
            return False
        except OSError:  # gone meanwhile, or not ours to reach: look again next time
            self._list_due = 0.0
            return False
        return True

    @staticmethod
    def _remove_stale(peer: str) -> None:
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(peer).st_mode):
                os.unlink(peer)

    def _current_peers(self) -> list[str]:
        """The other sockets in the directory, listed again when it may have changed."""
        try:
            mtime: int | None = os.stat(self._dir).st_mtime_ns
        except OSError:
            mtime = None
        now = time.monotonic()
        if mtime != self._listed_mtime or now >= self._list_due:
            self._listed_mtime, self._list_due = mtime, now + PEER_REFRESH_SECONDS
            try:
                names = os.listdir(self._dir)
            except OSError:
                names = []
            self._peers = [path for name in names if name.endswith(SUFFIX)
                           and (path := str(self._dir / name)) != self._own]
        return self._peers
