"""The worker with the classic mistake the chaos suite must catch: it marks the record's
state before the conversion is sent. With CHAOS_DIE_AT_CONVERSION=n it kills itself with
SIGKILL at its n-th conversion, after the mark reached the changelog and before the send,
so the restarted worker finds the record already marked: the conversion is lost."""

import os
import signal

import faust

from streams import agents, main, tables
from streams.app import app, sources
from streams.clients.zoho_crm import ZohoClients
from streams.decisions.process import Tracked, process

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
        await agents.send_conversion(outcome.conversion, outcome.envelope_id)


agents.handle_webhook = mark_then_send

if __name__ == "__main__":
    main.main()
