"""Storage URLs: schemes, cluster node lists, options, and the plugin's registration."""

from __future__ import annotations

import pytest
from codeq_redis import RedisStorage
from codeq_redis.connection import Target, _HiredisPacking
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from codeq.core.config import load_settings
from codeq.core.errors import ConfigError, StoreUnavailable
from codeq.plugins import open_storage
from codeq.testing.redis_server import RedisServer, free_port


def test_a_cluster_url_names_every_node_and_the_credentials() -> None:
    target = Target.parse("redis+cluster://app:s%3Acret@10.0.0.1:7000,10.0.0.2:7001"
                          "?socket_timeout=0.5")
    assert target.cluster
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (target.username, target.password) == ("app", "s:cret")
    assert target.common()["socket_timeout"] == 0.5


@pytest.mark.parametrize("url", ["redis+cluster://host-without-port",
                                 "redis+cluster://h:\u00b2",  # a digit, but no number
                                 "redis+cluster://h:1?unknown=1",
                                 "redis+cluster://h:1?socket_timeout=soon",
                                 "redis://h:1?socket_timeout=nan",
                                 "redis://h:1?socket_connect_timeout=inf",
                                 "redis://h:1?socket_timeout=0",
                                 "redis://h:1?socket_timeout=-5",
                                 "memcached://h:1",
                                 # redis-py itself fails on these only when connecting:
                                 "redis://h:99999/0",
                                 "redis://h:port/0",
                                 "redis://h:1/0?unknown=1",
                                 "redis://h:1/0?max_connections=-1",
                                 "rediss://h:1/0?ssl_cert_reqs=sometimes",
                                 "redis+cluster://h:99999",
                                 "redis+cluster://h:0",
                                 # and reads these as another database than written:
                                 "redis://h:1/abc",  # database 0
                                 "redis://h:1/\u0663",  # an Arabic-Indic 3: database 3
                                 "redis://h:1/1_0",  # database 10
                                 "redis://h:1/%203",  # " 3": database 3
                                 "redis://h:1/0/1",  # database 1
                                 "redis://h:1/-1",
                                 "redis://h:1/0?db=x"])
def test_bad_urls_fail_at_startup_naming_the_storage_key(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Target.parse(url)
    assert raised.value.key == "storage"


def test_redis_py_retries_and_client_setinfo_are_off() -> None:
    common = Target.parse("redis://127.0.0.1:6379/0").common()
    assert common["retry"].get_retries() == 0
    assert common["driver_info"] is None


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0",
                                 "redis+cluster://127.0.0.1:1,127.0.0.1:2"])
def test_every_scheme_is_registered_through_the_plugin_hook(url: str) -> None:
    store = open_storage(url, load_settings(environ={}))
    assert isinstance(store, RedisStorage)
    assert store.cluster == url.startswith("redis+cluster")


def test_the_legacy_redis_addr_setting_opens_this_backend() -> None:
    settings = load_settings(environ={"REDIS_ADDR": "127.0.0.1:6390", "REDIS_PASSWORD": "pw"})
    assert settings.storage_url == "redis://:pw@127.0.0.1:6390"
    store = open_storage(settings.storage_url, settings)
    assert isinstance(store, RedisStorage) and not store.cluster


PACKED_ARGS = [
    ("EVALSHA", "a" * 40, 2, "codeq:{c}:ready", "codeq:{c}:task:1", "x", 1.5, 1 / 3, 1e20, -3,
     10**20, "é ü", b"\x00\xff", "", 0),
    ("SCRIPT LOAD", "return 1"),  # a command name with a space: redis-py splits it
    ("SET", "k", bytearray(b"v")),  # a type hiredis does not take
    ("SET", "k", memoryview(b"v")),
]


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0"])
@pytest.mark.parametrize("args", PACKED_ARGS, ids=["script", "spaced", "bytearray",
                                                   "memoryview"])
def test_commands_are_packed_by_hiredis_into_the_same_bytes(url: str, args: tuple) -> None:
    pool = Target.parse(url).connect().connection_pool
    connection = pool.make_connection()
    assert isinstance(connection, _HiredisPacking)
    plain = Connection()
    assert (b"".join(bytes(c) for c in connection.pack_command(*args))
            == b"".join(bytes(c) for c in plain.pack_command(*args)))


def test_values_redis_py_refuses_are_still_refused_with_its_error() -> None:
    connection = Target.parse("redis://127.0.0.1:1/0").connect().connection_pool.make_connection()
    for bad in (None, True, [1]):
        with pytest.raises(DataError):
            connection.pack_command("SET", "k", bad)


def test_an_ipv6_cluster_node_is_written_in_brackets() -> None:
    assert Target.parse("redis+cluster://[::1]:7000,[fe80::1]:7001").nodes == (
        ("::1", 7000), ("fe80::1", 7001))


async def test_a_database_the_server_refuses_fails_at_startup(redis_server: RedisServer) -> None:
    store = RedisStorage(f"redis://127.0.0.1:{redis_server.port}/16")  # 16 databases: 0..15
    with pytest.raises(ConfigError, match="DB index is out of range") as raised:
        await store.open()
    await store.close()
    assert raised.value.key == "storage"


async def test_an_unreachable_cluster_is_unavailable_not_a_traceback() -> None:
    store = RedisStorage(f"redis+cluster://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailable, match="did not answer"):
        await store.open()
    await store.close()
