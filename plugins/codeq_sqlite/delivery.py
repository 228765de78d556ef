"""Job bodies for what the store keeps for webhooks: subscriptions, group turns, the outbox.

Like the task job bodies in ``codeq_sqlite.store`` they run on the store's
thread, writes inside a ``BEGIN IMMEDIATE`` transaction: the file's write
lock, so a throttle, a turn or a taken outbox entry is decided once across
every process sharing the file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from codeq.core.domain import Callback, DeliveryMode, Subscription
from codeq_sqlite.tx import Tx

SUBSCRIPTION_COLUMNS = ("id, owner, callback_url, event_types, delivery_mode, group_id, "
                        "min_interval_seconds, created_at, expires_at")
#: A subscription saved again keeps the time it was last notified.
SAVE_SUBSCRIPTION = (
    f"INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, "
    "callback_url = excluded.callback_url, event_types = excluded.event_types, "
    "delivery_mode = excluded.delivery_mode, group_id = excluded.group_id, "
    "min_interval_seconds = excluded.min_interval_seconds, created_at = excluded.created_at, "
    "expires_at = excluded.expires_at")
SELECT_SUBSCRIPTION = f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = ?"
SELECT_ACTIVE = f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE expires_at > ? ORDER BY id"
RENEW_SUBSCRIPTION = "UPDATE subscriptions SET expires_at = ? WHERE id = ?"
DELETE_SUBSCRIPTION = "DELETE FROM subscriptions WHERE id = ?"
SWEEP_SUBSCRIPTIONS = ("DELETE FROM subscriptions WHERE id IN (SELECT id FROM subscriptions "
                       "WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)")
#: Parameters: now, id, now, min_interval_seconds. ``NOT (now - last < interval)``
#: is the memory store's test, float for float.
MARK_NOTIFIED = ("UPDATE subscriptions SET notified_at = ? WHERE id = ? "
                 "AND (notified_at IS NULL OR NOT (? - notified_at < ?))")
NEXT_TURN = ("INSERT INTO turns (key, turn) VALUES (?, 1) "
             "ON CONFLICT (key) DO UPDATE SET turn = turn + 1 RETURNING turn")

CALLBACK_COLUMNS = "task_id, url, attempts, due_at"
SELECT_DUE_CALLBACKS = (f"SELECT {CALLBACK_COLUMNS} FROM outbox WHERE due_at <= ? "
                        "ORDER BY due_at, task_id LIMIT ?")
HOLD_CALLBACK = "UPDATE outbox SET due_at = ? WHERE task_id = ?"
RETRY_CALLBACK = ("UPDATE outbox SET attempts = attempts + 1, due_at = ? "
                  "WHERE task_id = ? AND attempts = ?")
DROP_CALLBACK = "DELETE FROM outbox WHERE task_id = ? AND attempts = ?"
SELECT_CALLBACKS = f"SELECT {CALLBACK_COLUMNS} FROM outbox ORDER BY task_id"
COUNT_CALLBACKS = "SELECT count(*) FROM outbox"


def _subscription(row: tuple[Any, ...]) -> Subscription:
    (sub_id, owner, callback_url, event_types, delivery_mode, group_id, min_interval, created_at,
     expires_at) = row
    return Subscription(id=sub_id, owner=owner, callback_url=callback_url,
                        event_types=orjson.loads(event_types),
                        delivery_mode=DeliveryMode(delivery_mode), group_id=group_id,
                        min_interval_seconds=min_interval, created_at=created_at,
                        expires_at=expires_at)


# -- subscriptions ------------------------------------------------------------------------------
def save_subscription(tx: Tx, sub: Subscription) -> None:
    tx.db.execute(SAVE_SUBSCRIPTION, (
        sub.id, sub.owner, sub.callback_url, orjson.dumps(sub.event_types).decode(),
        sub.delivery_mode.value, sub.group_id, sub.min_interval_seconds, sub.created_at,
        sub.expires_at))


def get_subscription(db: sqlite3.Connection, subscription_id: str) -> Subscription | None:
    found = db.execute(SELECT_SUBSCRIPTION, (subscription_id,)).fetchone()
    return _subscription(found) if found is not None else None


def renew_subscription(tx: Tx, subscription_id: str, expires_at: float) -> bool:
    return tx.db.execute(RENEW_SUBSCRIPTION, (expires_at, subscription_id)).rowcount > 0


def delete_subscription(tx: Tx, subscription_id: str) -> bool:
    return tx.db.execute(DELETE_SUBSCRIPTION, (subscription_id,)).rowcount > 0


def active_subscriptions(db: sqlite3.Connection, now: float) -> list[Subscription]:
    return [_subscription(row) for row in db.execute(SELECT_ACTIVE, (now,))]


def sweep_subscriptions(tx: Tx, now: float, limit: int) -> int:
    return tx.db.execute(SWEEP_SUBSCRIPTIONS, (now, limit)).rowcount


def mark_notified(tx: Tx, subscription_id: str, now: float, min_interval: float) -> bool:
    """True when granted; a subscription that is gone is never notified."""
    return tx.db.execute(MARK_NOTIFIED, (now, subscription_id, now, min_interval)).rowcount > 0


def next_turn(tx: Tx, key: str) -> int:
    [(turn,)] = tx.db.execute(NEXT_TURN, (key,)).fetchall()
    return int(turn)


# -- the result callback outbox ------------------------------------------------------------------
def due_callbacks(tx: Tx, now: float, limit: int, hold_seconds: float) -> list[Callback]:
    taken = [Callback(*row) for row in tx.db.execute(SELECT_DUE_CALLBACKS, (now, limit))
             .fetchall()]
    tx.db.executemany(HOLD_CALLBACK, [(now + hold_seconds, c.task_id) for c in taken])
    return taken


def callback_attempted(tx: Tx, task_id: str, attempts: int, retry_at: float | None) -> bool:
    if retry_at is None:
        return tx.db.execute(DROP_CALLBACK, (task_id, attempts)).rowcount > 0
    return tx.db.execute(RETRY_CALLBACK, (retry_at, task_id, attempts)).rowcount > 0


def outbox_size(db: sqlite3.Connection) -> int:
    return int(db.execute(COUNT_CALLBACKS).fetchone()[0])


def callbacks(db: sqlite3.Connection) -> list[Callback]:
    return [Callback(*row) for row in db.execute(SELECT_CALLBACKS)]
