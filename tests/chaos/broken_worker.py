"""The worker with the classic mistake the chaos suite must catch: it marks the record's
state before the conversion is sent. With CHAOS_DIE_AT_CONVERSION=n it kills itself with
SIGKILL at its n-th conversion, after the mark reached the changelog and before the send,
so the restarted worker finds the record already marked: the conversion is lost."""

import os
import signal
from collections.abc import Sequence

import faust
from faust.types import EventT

from schemas.topics import PARTITION_MARKER_KEY
from streams import agents, main, tables
from streams.app import app, sources
from streams.clients.zoho_crm import ZohoClients
from streams.decisions.process import Tracked, process
from streams.send import send_all_confirmed

DIE_AT = int(os.environ.get("CHAOS_DIE_AT_CONVERSION", "0"))
conversions = 0


async def mark_then_send(message: faust.types.Message, crm: ZohoClients) -> None:
    global conversions
    outcome = await process(message.value, sources, agents.state_of, crm.get_record)
    assert isinstance(outcome, Tracked), outcome  # the chaos load is valid throughout
    tables.record_states[outcome.key] = outcome.new_state.to_json()
    if outcome.conversion:
        conversions += 1
        if conversions == DIE_AT:
            await app.producer.flush()  # the mark is in the changelog
            os.kill(os.getpid(), signal.SIGKILL)
        await send_all_confirmed([agents.conversion_record(outcome.conversion)])


async def each_marked_then_sent(batch: Sequence[EventT[bytes]], crm: ZohoClients) -> None:
    for event in batch:
        if event.message.key != PARTITION_MARKER_KEY:
            with tables.in_event(event):
                await mark_then_send(event.message, crm)


agents.handle_batch = each_marked_then_sent

if __name__ == "__main__":
    main.main()
