"""BatchWriter: items queued close together leave as one batch; a failing write costs items, not the loop."""

from __future__ import annotations

import asyncio

import pytest

from tgstream.dataflows.writers import BatchWriter

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_items_within_the_wait_leave_together_capped_at_max_batch() -> None:
    batches: list[list[int]] = []

    async def write(batch: list[int]) -> None:
        batches.append(batch)

    writer: BatchWriter[int] = BatchWriter("t", write, max_batch=4, max_wait_s=0.05)
    writer.start()
    for item in range(3):
        writer.put(item)
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.1)
    for item in range(3, 9):
        writer.put(item)
    await asyncio.sleep(0.2)
    await writer.close()

    assert batches[0] == [0, 1, 2], "items 5 ms apart within a 50 ms wait are one batch"
    assert [len(b) for b in batches[1:]] == [4, 2]
    assert [item for batch in batches for item in batch] == list(range(9))


async def test_a_failing_write_drops_its_batch_and_the_next_one_goes_through() -> None:
    written: list[list[int]] = []

    async def write(batch: list[int]) -> None:
        if 0 in batch:
            raise RuntimeError("backend down")
        written.append(batch)

    writer: BatchWriter[int] = BatchWriter("t", write, max_batch=10, max_wait_s=0.01)
    writer.start()
    writer.put(0)
    await asyncio.sleep(0.05)
    writer.put(1)
    await asyncio.sleep(0.05)
    await writer.close()
    assert written == [[1]]


async def test_close_writes_what_is_still_queued() -> None:
    written: list[int] = []

    async def write(batch: list[int]) -> None:
        written.extend(batch)

    writer: BatchWriter[int] = BatchWriter("t", write, max_wait_s=10.0)
    writer.start()
    for item in range(5):
        writer.put(item)
    await asyncio.sleep(0)
    await writer.close()
    assert sorted(written) == list(range(5))
