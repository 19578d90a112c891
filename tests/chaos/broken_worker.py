"""The worker with the classic mistake the chaos suite must catch: it marks the record's
state before the conversion is sent. With CHAOS_DIE_AT_CONVERSION=n it kills itself with
SIGKILL at its n-th conversion, after the mark reached the changelog and before the send,
so the restarted worker finds the record already marked: the conversion is lost."""

import os
import signal

import faust

from streams import agents, main
from streams.app import app, sources
from streams.status import RecordState
from streams.webhooks import decode_envelope, state_key, track, validated_change

DIE_AT = int(os.environ.get("CHAOS_DIE_AT_CONVERSION", "0"))
conversions = 0


async def mark_then_send(message: faust.types.Message, crm: object) -> None:
    global conversions
    envelope = decode_envelope(message.value)
    change, source = validated_change(envelope, sources)
    key = state_key(change)
    tracked = track(change, source, RecordState.from_json(agents.topics.record_states.get(key)))
    agents.topics.record_states[key] = tracked.new_state.to_json()
    if tracked.conversion:
        conversions += 1
        if conversions == DIE_AT:
            await app.producer.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        event = tracked.conversion
        await agents.send_confirmed(
            agents.topics.conversions, event.cdp_id.encode(), event.model_dump_json().encode()
        )


agents.handle_webhook = mark_then_send  # type: ignore[assignment]

if __name__ == "__main__":
    main.main()
