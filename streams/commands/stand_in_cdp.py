"""`zoho-cdp-stand-in-cdp`: a local CDP that prints and files the conversions it receives.

Tests use the same server, with a `respond` hook to play an unavailable or picky CDP."""

import argparse
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

Respond = Callable[[list[dict[str, Any]]], Awaitable[web.Response | None]]


@dataclass
class StandInCdp:
    token: str = ""
    log_file: Path | None = None
    echo: bool = False
    respond: Respond | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/events", self.receive)
        return app

    async def receive(self, request: web.Request) -> web.Response:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "bad token"}, status=401)
        events = (await request.json())["events"]
        self.requests.append(
            {"idempotency_key": request.headers.get("Idempotency-Key"), "events": events}
        )
        answer = await self.respond(events) if self.respond else None
        if answer is not None:
            return answer
        seen = {event["event_id"] for event in self.delivered}
        for event in events:
            self._file(event, duplicate=event["event_id"] in seen)
        self.delivered.extend(events)
        return web.json_response({"accepted": len(events)})

    def _file(self, event: dict[str, Any], duplicate: bool) -> None:
        line = json.dumps(event)
        if self.log_file:
            with self.log_file.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        if self.echo:
            mark = " (duplicate event_id, ignored by a real CDP)" if duplicate else ""
            print(
                f"CDP received {event['event_name']} for cdp_id={event['cdp_id']} "
                f"value={event['value']} {event['currency']}{mark}\n  {line}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--token", default="", help="expect this bearer token")
    parser.add_argument("--log-file", type=Path, help="append each event as a JSON line")
    arguments = parser.parse_args()
    cdp = StandInCdp(token=arguments.token, log_file=arguments.log_file, echo=True)
    print(f"stand-in CDP listening on http://{arguments.host}:{arguments.port}/events", flush=True)
    web.run_app(cdp.app(), host=arguments.host, port=arguments.port, print=None)


if __name__ == "__main__":
    main()
