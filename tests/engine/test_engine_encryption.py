"""Encryption at rest: with a key, Redis holds only ciphertext of what tasks carry."""

from __future__ import annotations

import asyncio

import pytest

from mcp_tasks.engine import Docket, Status, Worker, current_task
from mcp_tasks.engine.codec import CipherError, Codec, new_encryption_key
from tests.helpers.dockets import dump, purge, running

pytestmark = pytest.mark.anyio

SECRET = "hunter2-the-secret-argument"
ANSWER = "the-secret-answer-xyzzy"


async def test_redis_holds_only_ciphertext(url: str, docket_name: str) -> None:
    key = new_encryption_key()
    codec = Codec(key)
    asked = asyncio.Event()
    release = asyncio.Event()

    async def secretive(secret: str) -> dict[str, str]:
        answer = await current_task().ask({"question": f"about {secret}?"})
        asked.set()
        await release.wait()
        return {"echo": secret, "answer": answer["text"]}

    async def leaky(secret: str) -> None:
        raise RuntimeError(f"failed while holding {secret}")

    try:
        async with Docket(name=docket_name, url=url, codec=codec) as docket:
            docket.register(secretive)
            docket.register(leaky)
            async with running(Worker(docket)):
                waiting = await docket.add(secretive)(SECRET)
                failing = await docket.add(leaky)(SECRET)
                async for state in docket.watch(waiting.key):
                    if state.questions:
                        assert list(state.questions.values()) == [{"question": f"about {SECRET}?"}]
                        raw = await dump(docket)  # the question and the queued call
                        assert SECRET.encode() not in raw
                        await docket.answer(
                            waiting.key, {next(iter(state.questions)): {"text": ANSWER}}
                        )
                        break
                await asyncio.wait_for(asyncio.shield(asked.wait()), 10)
                release.set()
                done = await docket.wait(waiting.key, timeout=10)
                failed = await docket.wait(failing.key, timeout=10)

            assert done.status is Status.COMPLETED
            assert done.result == {"echo": SECRET, "answer": ANSWER}
            assert failed.status is Status.FAILED and failed.error is not None
            assert SECRET in failed.error.message
            raw = await dump(docket)
            assert waiting.key.encode() in raw and b"enc1:" in raw  # the dump sees the task
            assert SECRET.encode() not in raw
            assert ANSWER.encode() not in raw

        # Without the key — or with another one — a reader is told what is wrong.
        async with Docket(name=docket_name, url=url, codec=Codec()) as keyless:
            with pytest.raises(CipherError, match="MCP_TASKS_ENCRYPTION_KEY"):
                await keyless.get(waiting.key)
        async with Docket(name=docket_name, url=url, codec=Codec(new_encryption_key())) as wrong:
            with pytest.raises(CipherError, match="another key"):
                await wrong.get(waiting.key)
        # Key rotation: a new key first, the old one after it, and old tasks still open.
        rotated = Codec([new_encryption_key(), key])
        async with Docket(name=docket_name, url=url, codec=rotated) as docket:
            state = await docket.get(waiting.key)
            assert state is not None and state.result["echo"] == SECRET
    finally:
        await purge(url, docket_name)


async def test_a_worker_without_the_key_fails_the_task_clearly(url: str, docket_name: str) -> None:
    async def echo(text: str) -> str:
        return text

    try:
        async with Docket(name=docket_name, url=url, codec=Codec(new_encryption_key())) as sealed:
            sealed.register(echo)
            execution = await sealed.add(echo)("hello")
        async with Docket(name=docket_name, url=url, codec=Codec()) as docket:
            docket.register(echo)
            async with running(Worker(docket)):
                final = await docket.wait(execution.key, timeout=10)
        assert final.status is Status.FAILED and final.error is not None
        assert final.error.type == "CipherError"
        assert "MCP_TASKS_ENCRYPTION_KEY" in final.error.message
        assert final.attempt == 1  # not retried: another attempt cannot succeed
    finally:
        await purge(url, docket_name)


async def test_plain_tasks_stay_readable_once_encryption_is_switched_on(
    url: str, docket_name: str
) -> None:
    async def echo(text: str) -> str:
        return text

    try:
        async with Docket(name=docket_name, url=url, codec=Codec()) as plain:
            plain.register(echo)
            execution = await plain.add(echo)("from the plain era")
        async with Docket(name=docket_name, url=url, codec=Codec(new_encryption_key())) as docket:
            docket.register(echo)
            async with running(Worker(docket)):
                final = await docket.wait(execution.key, timeout=10)
        assert final.status is Status.COMPLETED and final.result == "from the plain era"
    finally:
        await purge(url, docket_name)


def test_bad_keys_are_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="32 url-safe base64-encoded bytes"):
        Codec("not-a-key")


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_TASKS_ENCRYPTION_KEY", raising=False)
    assert not Codec.from_env().encrypting
    assert not Docket("d1").codec.encrypting
    monkeypatch.setenv(
        "MCP_TASKS_ENCRYPTION_KEY", f"{new_encryption_key()}, {new_encryption_key()}"
    )
    assert Codec.from_env().encrypting
    assert Docket("d2").codec.encrypting


def test_key_names_from_sealed_data_are_keyed_hashes() -> None:
    """A concurrency limit per argument value puts that value in a Redis key name: with a key
    it becomes an HMAC, which (unlike a plain hash of a user id, say) cannot be inverted."""
    import hashlib

    assert Codec().name("fn:user=42") == "fn:user=42"
    key = new_encryption_key()
    sealed = Codec(key).name("fn:user=42")
    assert sealed == Codec(key).name("fn:user=42")  # stable across processes
    assert sealed != Codec(new_encryption_key()).name("fn:user=42")
    assert sealed != hashlib.sha256(b"fn:user=42").hexdigest()
