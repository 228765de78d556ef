"""``ResultBatcher``: many tasks' results in one ``POST /tasks/batch/results``.

A result waits only while a batch is already on its way: the first one leaves
at once, the ones that finish meanwhile leave together as soon as it is
answered. So batching adds no latency when work is slow, and turns one request
per task into a few per second when it is quick.
"""

from __future__ import annotations

import asyncio
from typing import Any

from codeq.client import AsyncClient
from codeq.client.errors import ServerError, error_for

#: The server's limit of items per batch request (claims and results alike).
MAX_ITEMS = 1000


class ResultBatcher:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: dict[str, Any]) -> Any:
        """Send ``{"taskId", "status", …}`` with the next batch; its stored record, or the
        error the server gave this item (or the whole batch) as the SDK raises it."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:MAX_ITEMS]
                del self._waiting[:MAX_ITEMS]
                try:
                    answers = await self._client.submit_results([item for item, _ in batch])
                    outcomes = [_outcome(answer) for answer in answers]
                    if len(outcomes) != len(batch):
                        raise ServerError(f"{len(outcomes)} answers to {len(batch)} results")
                except Exception as exc:  # noqa: BLE001 -- every waiter decides whether to retry
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._sender = None


def _outcome(answer: dict[str, Any]) -> Any:
    """An item's stored record, or its refusal as the SDK's exception."""
    if "error" in answer:
        return error_for(int(answer.get("code") or 500), answer, None)
    return answer["result"]
