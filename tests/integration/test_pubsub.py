"""Both brokers: what is published after a subscription returns reaches its listeners in
order, only theirs, and no longer once unsubscribed; presence counts sockets and, with Redis,
is seen by the other processes (two brokers here) until the last socket leaves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from mobimart.infra import pubsub
from mobimart.infra.pubsub import Broker, LocalBroker, RedisBroker
from tests.conftest import absent

REDIS_URL = "redis://127.0.0.1:6379/15"


async def _redis_up() -> bool:
    client = Redis.from_url(REDIS_URL)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Broker]]:
    """Brokers of one kind sharing one namespace (as processes of one deployment do)."""
    kind = request.param
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    if kind == "redis" and not await _redis_up():
        absent(f"Redis not reachable at {REDIS_URL}")
    made: list[Broker] = []

    def make() -> Broker:
        broker: Broker = LocalBroker() if kind == "local" else RedisBroker(REDIS_URL, prefix=prefix)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.stop()


both = pytest.mark.parametrize("make_broker", ["local", "redis"], indirect=True)


async def _settle(got: list[Any], count: int) -> None:
    for _ in range(500):
        if len(got) >= count:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # and nothing more arrives


@both
async def test_published_after_subscribing_arrives_in_order_on_its_channel_only(
    make_broker: Callable[[], Broker],
) -> None:
    broker = make_broker()
    await broker.start()
    got: list[tuple[str, str]] = []
    await broker.subscribe("chat:user:1", lambda c, p: got.append((c, p)))
    for n in range(50):
        await broker.publish("chat:user:1", f"m{n}")
        await broker.publish("chat:user:2", "not yours")
    await _settle(got, 50)
    assert got == [("chat:user:1", f"m{n}") for n in range(50)]


@both
async def test_every_listener_hears_it_and_a_failing_one_stops_nobody(
    make_broker: Callable[[], Broker],
) -> None:
    broker = make_broker()
    first: list[str] = []
    second: list[str] = []

    def broken(channel: str, payload: str) -> None:
        raise RuntimeError("listener bug")

    await broker.subscribe("c", broken)
    await broker.subscribe("c", lambda c, p: first.append(p))
    await broker.subscribe("c", lambda c, p: second.append(p))
    await broker.publish("c", "hello")
    await _settle(first, 1)
    assert first == second == ["hello"]


@both
async def test_unsubscribed_hears_nothing_more(make_broker: Callable[[], Broker]) -> None:
    broker = make_broker()
    got: list[str] = []

    def listener(channel: str, payload: str) -> None:
        got.append(payload)

    await broker.subscribe("c", listener)
    await broker.publish("c", "one")
    await _settle(got, 1)
    await broker.unsubscribe("c", listener)
    await broker.publish("c", "two")
    await asyncio.sleep(0.2)
    assert got == ["one"]
    await broker.subscribe("c", listener)  # and again after that
    await broker.publish("c", "three")
    await _settle(got, 2)
    assert got == ["one", "three"]


@both
async def test_presence_counts_sockets(make_broker: Callable[[], Broker]) -> None:
    broker = make_broker()
    await broker.join("user:1")
    await broker.join("user:1")
    assert await broker.online(["user:1", "user:2"]) == {"user:1"}
    await broker.leave("user:1")
    assert await broker.online(["user:1"]) == {"user:1"}  # one socket is still there
    await broker.leave("user:1")
    assert await broker.online(["user:1"]) == set()


@pytest.mark.parametrize("make_broker", ["redis"], indirect=True)
async def test_redis_carries_messages_and_presence_between_processes(
    make_broker: Callable[[], Broker],
) -> None:
    a, b = make_broker(), make_broker()
    got: list[str] = []
    await b.subscribe("chat:merchant:3", lambda c, p: got.append(p))
    for n in range(20):
        await a.publish("chat:merchant:3", str(n))
    await _settle(got, 20)
    assert got == [str(n) for n in range(20)]

    await a.join("merchant:3")
    assert await b.online(["merchant:3", "user:9"]) == {"merchant:3"}
    await b.join("merchant:3")
    await a.leave("merchant:3")
    assert await a.online(["merchant:3"]) == {"merchant:3"}  # b's socket
    await b.stop()  # a process going away takes its presence with it
    assert await a.online(["merchant:3"]) == set()


@pytest.mark.parametrize("make_broker", ["redis"], indirect=True)
async def test_redis_brokers_with_other_prefixes_do_not_hear_each_other(
    make_broker: Callable[[], Broker],
) -> None:
    ours = make_broker()
    theirs = RedisBroker(REDIS_URL, prefix=f"other-{uuid.uuid4().hex[:8]}:")
    try:
        got: list[str] = []
        await ours.subscribe("c", lambda c, p: got.append(p))
        await theirs.publish("c", "elsewhere")
        await theirs.join("user:1")
        await asyncio.sleep(0.2)
        assert got == []
        assert await ours.online(["user:1"]) == set()
    finally:
        await theirs.stop()


@both
async def test_subscribing_while_the_last_listener_leaves_stays_subscribed(
    make_broker: Callable[[], Broker],
) -> None:
    """A socket reconnecting to the same process: the old one leaves as the new one comes."""
    broker = make_broker()
    got: list[str] = []

    def old(channel: str, payload: str) -> None:
        pass

    def new(channel: str, payload: str) -> None:
        got.append(payload)

    for round_ in range(10):
        await broker.subscribe("c", old)
        await asyncio.gather(broker.unsubscribe("c", old), broker.subscribe("c", new))
        await broker.publish("c", str(round_))
        await _settle(got, round_ + 1)
        assert got[-1:] == [str(round_)]
        await broker.unsubscribe("c", new)


@pytest.mark.parametrize("make_broker", ["redis"], indirect=True)
async def test_a_process_that_stopped_beating_no_longer_counts(
    make_broker: Callable[[], Broker],
) -> None:
    a, b = make_broker(), make_broker()
    assert isinstance(b, RedisBroker)
    await b.join("user:5")
    assert await a.online(["user:5"]) == {"user:5"}
    # A crash: no leave, no stop; its heartbeat key runs out (here: is gone at once).
    await b._redis().delete(b._alive_key(b._process))
    assert await a.online(["user:5"]) == set()


redis_only = pytest.mark.parametrize("make_broker", ["redis"], indirect=True)


@redis_only
async def test_a_failed_subscribe_does_not_block_later_subscribers(
    make_broker: Callable[[], Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SUBSCRIBE command fails (its connection dropped): that subscriber is told, and the
    next one to the channel sends its own instead of waiting for the failed one for good."""
    broker = make_broker()
    assert isinstance(broker, RedisBroker)
    await broker.start()
    assert broker._pubsub is not None
    real = broker._pubsub.subscribe
    failures = [RedisError("connection lost")]

    async def flaky(*channels: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*channels)

    monkeypatch.setattr(broker._pubsub, "subscribe", flaky)
    got: list[str] = []
    with pytest.raises(RedisError, match="connection lost"):
        await broker.subscribe("c", lambda c, p: got.append("first"))
    async with asyncio.timeout(5):
        await broker.subscribe("c", lambda c, p: got.append(p))
    await broker.publish("c", "hello")
    await _settle(got, 1)
    assert got == ["hello"]


@redis_only
async def test_an_unconfirmed_subscribe_times_out_and_the_next_one_works(
    make_broker: Callable[[], Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SUBSCRIBE sent but never confirmed: its subscriber, and whoever waited on the same
    command, give up after SUBSCRIBE_TIMEOUT_S; a later subscriber starts afresh."""
    monkeypatch.setattr(pubsub, "SUBSCRIBE_TIMEOUT_S", 0.3)
    broker = make_broker()
    assert isinstance(broker, RedisBroker)
    await broker.start()
    assert broker._pubsub is not None
    real = broker._pubsub.subscribe
    lost = [True]

    async def swallowed(*channels: Any) -> Any:
        if lost:
            lost.pop()
            return None  # never reaches Redis: no confirmation will come
        return await real(*channels)

    monkeypatch.setattr(broker._pubsub, "subscribe", swallowed)
    got: list[str] = []

    def first(channel: str, payload: str) -> None:
        got.append("first")

    def second(channel: str, payload: str) -> None:
        got.append("second")

    async with asyncio.timeout(5):  # (it used to wait for good)
        results = await asyncio.gather(
            broker.subscribe("c", first), broker.subscribe("c", second), return_exceptions=True
        )
    assert [type(r) for r in results] == [TimeoutError, TimeoutError]
    async with asyncio.timeout(5):
        await broker.subscribe("c", lambda c, p: got.append(p))
    await broker.publish("c", "hello")
    await _settle(got, 1)
    assert got == ["hello"]


@redis_only
async def test_reconnect_hooks_run_once_the_subscriptions_are_back(
    make_broker: Callable[[], Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever was published while the subscription connection was down is gone: the hooks
    (the chat hub's catch-up from the database) are told when it is back, with the time lost."""
    broker = make_broker()
    assert isinstance(broker, RedisBroker)
    lost: list[Any] = []

    async def hook(lost_at: Any) -> None:
        lost.append(lost_at)

    broker.on_reconnect(hook)
    got: list[str] = []
    await broker.subscribe("c", lambda c, p: got.append(p))
    assert broker._pubsub is not None
    real = broker._pubsub.get_message
    failures = [RedisError("connection lost")]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(broker._pubsub, "get_message", flaky)
    await broker.publish("c", "wake")  # the read waiting now returns; the next one fails
    await _settle(got, 1)
    assert lost == []
    await broker.publish("c", "back")
    await _settle(lost, 1)
    assert got == ["wake", "back"]
    assert len(lost) == 1
