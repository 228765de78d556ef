"""Commands reach Redis packed by hiredis, on one server and on every cluster node."""

from __future__ import annotations

from codeq_redis.connection import _HiredisPacking

from codeq.testing.redis_server import RedisCluster, RedisServer
from tests.redis.conftest import OpenStore, created


async def test_a_store_on_one_server_packs_with_hiredis(
        open_store: OpenStore, redis_server: RedisServer) -> None:
    store = await open_store(redis_server.url)
    tasks = await created(store, "PACKED", 3, 1_000.0)
    page = await store.list_tasks(command="PACKED", status=None, limit=10, cursor=None)
    assert sorted(t.id for t in page.tasks) == sorted(t.id for t in tasks)
    connections = store.client.connection_pool._available_connections  # type: ignore[union-attr]
    assert connections and all(isinstance(c, _HiredisPacking) for c in connections)


async def test_every_cluster_node_packs_with_hiredis(
        open_store: OpenStore, redis_cluster: RedisCluster) -> None:
    store = await open_store(redis_cluster.url)
    for command in ("PACK-A", "PACK-B", "PACK-C", "PACK-D"):
        await created(store, command, 2, 1_000.0)
    nodes = store.client.get_nodes()  # type: ignore[union-attr]
    assert len(nodes) >= 3
    assert all(issubclass(node.connection_class, _HiredisPacking) for node in nodes)
