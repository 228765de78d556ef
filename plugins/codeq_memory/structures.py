"""Queue structures with lazy deletion for the in-memory store.

A task that leaves a queue is not searched for and removed (that would be
O(queue length)); its entry simply goes stale. Each placement of a task in a
queue carries a token, unique across the store, and an entry is live only
while the task still holds that token. Stale entries are dropped when they
reach the front, and a structure rebuilds itself once stale entries outnumber
live ones, so memory stays proportional to the live tasks.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: ``live(token, task_id)``: does the task still hold this placement?
Live = Callable[[int, str], bool]
#: ``(key, token, task_id)``; ``key`` is any orderable value.
Item = tuple[Any, int, str]
#: Below this many entries a structure never bothers to compact.
COMPACT_FLOOR = 64


class LazyHeap:
    """A min-heap of items; ``size`` counts the live ones."""

    def __init__(self, live: Live) -> None:
        self._live = live
        self._items: list[Item] = []
        self.size = 0

    def push(self, key: Any, token: int, task_id: str) -> None:
        heapq.heappush(self._items, (key, token, task_id))
        self.size += 1

    def discard(self) -> None:
        """Note that one live entry went stale (its task moved elsewhere)."""
        self.size -= 1
        if len(self._items) > COMPACT_FLOOR and len(self._items) > 2 * self.size:
            self._items = [item for item in self._items if self._live(item[1], item[2])]
            heapq.heapify(self._items)

    def peek(self) -> Item | None:
        """The smallest live item, dropping stale ones from the front."""
        items = self._items
        while items and not self._live(items[0][1], items[0][2]):
            heapq.heappop(items)
        return items[0] if items else None

    def smallest_upto(self, bound: Any, limit: int) -> list[Item]:
        """Up to ``limit`` live items with ``key <= bound``, smallest first, left in place."""
        taken: list[Item] = []
        while len(taken) < limit:
            head = self.peek()
            if head is None or head[0] > bound:
                break
            taken.append(heapq.heappop(self._items))
        for item in taken:
            heapq.heappush(self._items, item)
        return taken

    def count_upto(self, bound: Any) -> int:
        """Live items with ``key <= bound``, visiting only the part of the heap at or below it."""
        items = self._items
        count = 0
        stack = [0] if items else []
        while stack:
            index = stack.pop()
            key, token, task_id = items[index]
            if key > bound:
                continue
            if self._live(token, task_id):
                count += 1
            stack.extend(child for child in (2 * index + 1, 2 * index + 2) if child < len(items))
        return count


def merge_heads(heaps: Sequence[LazyHeap]) -> Iterator[Item]:
    """The live items of several heaps in global key order, one head at a time.

    The consumer must make each yielded item stale (move its task) before it
    asks for the next one; nothing is popped here. Costs O(len(heaps)) to
    start and O(log len(heaps)) per item.
    """
    heads = [(head, index) for index, heap in enumerate(heaps) if (head := heap.peek()) is not None]
    heapq.heapify(heads)
    while heads:
        head, index = heads[0]
        yield head
        following = heaps[index].peek()
        if following is None:
            heapq.heappop(heads)
        else:
            heapq.heapreplace(heads, (following, index))


class OrderedLog:
    """Append-only ``(token, task_id)`` pairs in increasing token order, paged by token."""

    def __init__(self, live: Live) -> None:
        self._live = live
        self._tokens: list[int] = []
        self._ids: list[str] = []
        self.size = 0

    def append(self, token: int, task_id: str) -> None:
        self._tokens.append(token)
        self._ids.append(task_id)
        self.size += 1

    def discard(self) -> None:
        self.size -= 1
        if len(self._tokens) > COMPACT_FLOOR and len(self._tokens) > 2 * self.size:
            pairs = zip(self._tokens, self._ids, strict=True)
            kept = [(t, i) for t, i in pairs if self._live(t, i)]
            self._tokens = [t for t, _ in kept]
            self._ids = [i for _, i in kept]

    def after(self, token: int) -> Iterator[tuple[int, str]]:
        """Live pairs with a token greater than ``token``, in order.

        The log must not change while the iterator is in use.
        """
        for index in range(bisect_right(self._tokens, token), len(self._tokens)):
            token_here, task_id = self._tokens[index], self._ids[index]
            if self._live(token_here, task_id):
                yield token_here, task_id
