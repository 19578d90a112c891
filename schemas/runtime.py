"""How the pipeline's long-running processes set up the interpreter: the event loop
(EVENT_LOOP) and the garbage collector."""

import asyncio
import gc

import uvloop

# CPython collects its young generation every 700 allocations: every few webhooks, as
# each allocates hundreds of short-lived objects. Collected every 10,000, the cycles a
# webhook leaves are still freed within a batch or two.
YOUNG_GENERATION_THRESHOLD = 10_000


def prepare(event_loop: str) -> None:
    """Call once, at the start of a process's main, after its imports."""
    if event_loop == "uvloop":
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # What the imports made lives as long as the process: out of every collection's scan.
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
