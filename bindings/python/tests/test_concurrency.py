"""Many calls at once: the event loop keeps running, and sync calls release the GIL."""

from __future__ import annotations

import asyncio
import threading
import time

import capibara

CALLS = 100


def test_a_hundred_concurrent_async_chats_do_not_block_the_event_loop(cap: capibara.Capibara) -> None:
    async def run() -> tuple[list[dict], int, float]:
        ticks = 0
        longest_gap = 0.0

        async def tick() -> None:
            nonlocal ticks, longest_gap
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                longest_gap = max(longest_gap, now - last)
                last = now
                ticks += 1

        ticker = asyncio.create_task(tick())
        # Each answer streams 10 tokens 5 ms apart: about 50 ms each, all under way together.
        answers = await asyncio.gather(*(cap.aio.chat(f"Pregunta {i}", model="bench-10x5ms") for i in range(CALLS)))
        ticker.cancel()
        return answers, ticks, longest_gap

    started = time.perf_counter()
    answers, ticks, longest_gap = asyncio.run(run())
    elapsed = time.perf_counter() - started
    assert len(answers) == CALLS
    assert all(a["content"].startswith("Hola desde el servidor") for a in answers)
    assert ticks >= 5, f"the loop ticked {ticks} times in {elapsed:.2f} s"
    # Concurrent, not one after another (100 × 50 ms would be 5 s).
    assert elapsed < 4.0, f"{CALLS} chats took {elapsed:.2f} s"
    assert longest_gap < 0.5, f"the loop stalled for {longest_gap:.3f} s"


def test_sync_calls_from_threads_run_in_parallel_and_release_the_gil(cap: capibara.Capibara) -> None:
    answers: list[str] = []
    lock = threading.Lock()
    counted = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counted
        while not stop.is_set():
            counted += 1

    def ask(i: int) -> None:
        content = cap.chat(f"Pregunta {i}", model="bench-10x10ms")["content"]
        with lock:
            answers.append(content)

    counter = threading.Thread(target=count)
    counter.start()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    stop.set()
    counter.join()
    assert len(answers) == 20
    # 20 × 100 ms one after another would be 2 s; waiting without the GIL overlaps them.
    assert elapsed < 1.5, f"20 threaded chats took {elapsed:.2f} s"
    assert counted > 1000, "a pure-Python thread kept running while the calls waited"
