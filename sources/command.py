"""`zoho-cdp-sources`: list, show, create, change and remove sources through the admin API.

ADMIN_URL and ADMIN_TOKEN say where the admin API is and how to speak to it. A secret
option given as `-` is read from standard input, so it stays out of the process list
and the shell history."""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from tabulate import tabulate

from schemas.settings import Settings
from schemas.source import SourceConfig
from schemas.sources_file import SourcesFileError, load_sources
from sources.crypto import generate_key
from sources.record import secret_fields

LIST_COLUMNS = ("id", "enabled", "currency", "exchange_rate", "verify", "enrich", "secrets_set")


class AdminError(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="zoho-cdp-sources", description=__doc__)
    top.add_argument("--json", action="store_true", help="print the admin API's JSON answer")
    # Also after the command (`list --json`); SUPPRESS keeps it from undoing the top one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    commands = top.add_subparsers(dest="command", required=True)

    def add(name: str, **options: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], **options)

    add("list", help="every source, one line each")
    for name, text in (
        ("show", "one source"),
        ("disable", "its URL answers 410, its webhooks convert nothing"),
        ("enable", "undo disable"),
        ("delete", "remove the source for good"),
    ):
        add(name, help=text).add_argument("source_id")
    create = add("create", help="a new source; prints its api key once")
    create.add_argument("source_id")
    _field_options(create, creating=True)
    update = add("update", help="change the fields given")
    update.add_argument("source_id")
    _field_options(update, creating=False)
    rotate = add("rotate-key", help="a new api key; the old one keeps working")
    rotate.add_argument("source_id")
    rotate.add_argument(
        "--overlap-s", type=float, help="how long the old key keeps working (default: service's)"
    )
    imported = add("import", help="the sources of a sources file")
    imported.add_argument("file", type=Path)
    imported.add_argument("--force", action="store_true", help="replace sources of the same id")
    add("generate-key", help="a new key for SOURCES_ENCRYPTION_KEYS")
    return top


def _field_options(command: argparse.ArgumentParser, creating: bool) -> None:
    required = creating
    command.add_argument("--exchange-rate", required=required, help="CRM currency → target")
    command.add_argument("--currency", required=required, help="ISO 4217 target currency")
    command.add_argument("--client-id")
    command.add_argument("--client-secret", help="- reads it from standard input")
    command.add_argument("--refresh-token", help="- reads it from standard input")
    command.add_argument("--accounts-url", help="the client's Zoho data centre")
    command.add_argument("--amount-field")
    command.add_argument("--default-country")
    command.add_argument(
        "--pass-through", action="append", help="a profile field sent plain (repeatable)"
    )
    command.add_argument(
        "--status-map",
        action="append",
        metavar="MODULE:STATUS=EVENT",
        help="e.g. Leads:Contacted=Lead (repeatable; replaces the map)",
    )
    for flag in ("verify", "enrich"):
        command.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None)
    if creating:
        command.add_argument("--disabled", action="store_true", help="create it disabled")


def fields_of(arguments: argparse.Namespace, read_secret: Any = None) -> dict[str, Any]:
    """The JSON fields the options ask for; options not given are left out."""
    read = read_secret or (lambda: sys.stdin.readline().strip())
    fields: dict[str, Any] = {}
    for name in (
        "exchange_rate",
        "currency",
        "client_id",
        "accounts_url",
        "amount_field",
        "default_country",
        "verify",
        "enrich",
    ):
        value = getattr(arguments, name, None)
        if value is not None:
            fields[name] = value
    for name in ("client_secret", "refresh_token"):
        value = getattr(arguments, name, None)
        if value is not None:
            fields[name] = read() if value == "-" else value
    if getattr(arguments, "pass_through", None):
        fields["pass_through"] = arguments.pass_through
    if getattr(arguments, "status_map", None):
        status_map: dict[str, dict[str, str]] = {}
        for entry in arguments.status_map:
            module, _, mapping = entry.partition(":")
            status, _, event = mapping.partition("=")
            if not module or not status or "=" not in mapping:
                raise AdminError(f"--status-map {entry!r}: expected MODULE:STATUS=EVENT")
            status_map.setdefault(module, {})[status] = event
        fields["status_map"] = status_map
    if getattr(arguments, "disabled", False):
        fields["enabled"] = False
    return fields


def import_body(sources: dict[str, SourceConfig], force: bool) -> dict[str, Any]:
    """The sources with their secrets, for the admin API (over HTTPS in production)."""
    secrets = secret_fields()
    entries = []
    for source in sources.values():
        entry = source.model_dump(mode="json", exclude=set(secrets))
        for name in secrets:
            entry[name] = getattr(source, name).get_secret_value()
        entries.append(entry)
    return {"sources": entries, "force": force}


def request_for(arguments: argparse.Namespace) -> tuple[str, str, Any]:
    """Method, path under the admin URL, and JSON body of the command."""
    command = arguments.command
    one = f"/sources/{getattr(arguments, 'source_id', '')}"
    if command == "list":
        return "GET", "/sources", None
    if command == "show":
        return "GET", one, None
    if command == "create":
        return "POST", "/sources", {"id": arguments.source_id} | fields_of(arguments)
    if command == "update":
        return "PATCH", one, fields_of(arguments)
    if command in ("disable", "enable"):
        return "POST", f"{one}/{command}", None
    if command == "delete":
        return "DELETE", one, None
    if command == "rotate-key":
        overlap = {} if arguments.overlap_s is None else {"overlap_s": arguments.overlap_s}
        return "POST", f"{one}/rotate-key", overlap
    if command == "import":
        try:
            sources = load_sources(arguments.file, dict(os.environ))
        except SourcesFileError as error:
            raise AdminError(str(error)) from None
        return "POST", "/import", import_body(sources, arguments.force)
    raise AdminError(f"unknown command {command}")


async def call(settings: Settings, method: str, path: str, body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    url = settings.admin_url.rstrip("/") + path
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.request(method, url, json=body, headers=headers) as response,
        ):
            text = await response.text()
            return response.status, json.loads(text) if text else None
    except (aiohttp.ClientError, TimeoutError) as error:
        raise AdminError(f"cannot reach the admin API at {url}: {type(error).__name__}") from None
    except ValueError:
        raise AdminError(f"the admin API at {url} did not answer JSON") from None


def render(command: str, status: int, answer: Any) -> str:
    if status >= 400:
        lines = [f"error {status}: {answer.get('error') if answer else 'no answer'}"]
        lines += [f"  {p['field']}: {p['message']}" for p in (answer or {}).get("fields", [])]
        return "\n".join(lines)
    if command == "list":
        rows = [[_cell(source, column) for column in LIST_COLUMNS] for source in answer["sources"]]
        return tabulate(rows, headers=LIST_COLUMNS) if rows else "no sources"
    if command == "delete":
        return "deleted"
    if command == "import":
        return tabulate(
            [
                ["written", ", ".join(answer["written"]) or "-"],
                ["kept (already there)", ", ".join(answer["kept"]) or "-"],
            ]
        )
    # The id first, the secrets (which are set, never their values) last.
    ordered = sorted(answer.items(), key=lambda item: (item[0] != "id", item[0] == "secrets_set"))
    table = tabulate([[key, _cell(answer, key)] for key, _ in ordered])
    if command in ("create", "rotate-key"):
        table += "\n\nThe api key is shown only this once: give it to the client's CRM admin now."
    return table


def _cell(source: dict[str, Any], column: str) -> str:
    value = source.get(column)
    if column == "secrets_set":
        return ", ".join(name for name, present in (value or {}).items() if present) or "-"
    return _value(value)


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value) if value else "-"
    if value is None:
        return "-"
    return str(value)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parser().parse_args(argv)
    if arguments.command == "generate-key":
        print(generate_key())  # noqa: T201
        return
    settings = Settings()
    try:
        method, path, body = request_for(arguments)
        status, answer = asyncio.run(call(settings, method, path, body))
    except AdminError as error:
        sys.exit(str(error))
    if arguments.json:
        print(json.dumps(answer, indent=2))  # noqa: T201
    else:
        print(render(arguments.command, status, answer))  # noqa: T201
    if status >= 400:
        sys.exit(1)


if __name__ == "__main__":
    main()
