"""Read cdp.conversions and check every message against the published JSON Schema.

    python examples/consume_conversions.py --bootstrap-servers kafka:9092 --group-id my-team

Needs only aiokafka and jsonschema. Prints a line per message and exits 1 if any did not
match the schema, which also catches a `schema_version` this copy does not know yet. Copy
it and replace `handle` with what your team does with an event.
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from jsonschema import Draft7Validator

SCHEMA = Path(__file__).resolve().parents[1] / "schemas/json/conversion_event.schema.json"


def problems(value: bytes | None, validator: Draft7Validator) -> list[str]:
    """Why a message is not a conversion event of a version this consumer knows."""
    try:
        event = json.loads(value or b"")
    except ValueError as error:
        return [f"not JSON: {error}"]
    return [
        f"{'.'.join(str(part) for part in error.absolute_path) or 'message'}: {error.message}"
        for error in validator.iter_errors(event)
    ]


def handle(event: dict[str, Any]) -> str:
    return (
        f"{event['event_name']} event_id={event['event_id']} cdp_id={event['cdp_id']} "
        f"value={event['value']} {event['currency']}"
    )


async def consume(arguments: argparse.Namespace) -> int:
    validator = Draft7Validator(json.loads(arguments.schema.read_text(encoding="utf-8")))
    consumer = AIOKafkaConsumer(
        arguments.topic,
        bootstrap_servers=arguments.bootstrap_servers,
        group_id=arguments.group_id,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen = invalid = 0
    last = time.monotonic()
    try:
        while not arguments.max_messages or seen < arguments.max_messages:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                if arguments.idle_timeout and time.monotonic() - last >= arguments.idle_timeout:
                    print(f"nothing new for {arguments.idle_timeout:g} s", file=sys.stderr)
                    break
                continue
            last = time.monotonic()
            for message in (m for batch in batches.values() for m in batch):
                where = f"{message.topic}/{message.partition}@{message.offset}"
                reasons = problems(message.value, validator)
                if reasons:
                    invalid += 1
                    print(f"INVALID {where}: {'; '.join(reasons)}", flush=True)
                else:
                    print(f"ok {where} {handle(json.loads(message.value))}", flush=True)
                seen += 1
    finally:
        await consumer.stop()
    return 1 if invalid else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--topic", default="cdp.conversions")
    parser.add_argument("--group-id", help="commit offsets under this consumer group")
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    parser.add_argument("--max-messages", type=int, default=0, help="stop after this many")
    parser.add_argument(
        "--idle-timeout", type=float, default=0, help="stop after this many quiet seconds"
    )
    sys.exit(asyncio.run(consume(parser.parse_args())))


if __name__ == "__main__":
    main()
