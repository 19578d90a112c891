"""Reading the CRM API for changes: the records of a module modified in a window, and the
statuses recovered from the webhook-failures list and the records' timelines. The worker's
sweep and the backfill command both read through here and differ only in what they do
with the envelopes (`Send`) and where the window comes from.

Every call is taken from the sweep's `Budget` first: Zoho's API credits are finite, and a
budget spent stops the reading where it is (the records are sorted oldest change first,
so what was read is a complete prefix and the mark can move to it)."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.envelope import Origin, RawEnvelope
from schemas.source import SourceConfig
from streams.clients.zoho_crm import ZohoCrmClient
from streams.decisions.status import event_for_status
from streams.decisions.sweep import Budget, advanced_mark, record_envelope, timeline_envelopes
from zoho.fields import Module
from zoho.listing import modified_time
from zoho.records import list_fields
from zoho.timeline import StatusChange

log = logging.getLogger(__name__)

Send = Callable[[RawEnvelope], Awaitable[None]]
# Told the records read so far, after each page (the backfill's progress bar).
OnPage = Callable[[int], None]


@dataclass
class ModuleRead:
    """What reading one module gave."""

    records: int = 0
    envelopes: int = 0
    without_cdp_id: int = 0
    recovered: int = 0  # envelopes of statuses found in timelines
    mark: datetime | None = None  # latest Modified_Time read
    complete: bool = True  # False: the budget ran out first


async def read_modified(
    client: ZohoCrmClient,
    source: SourceConfig,
    module: Module,
    *,
    since: datetime,
    until: datetime | None,
    origin: Origin,
    budget: Budget,
    send: Send,
    now: Callable[[], datetime],
    on_page: OnPage | None = None,
) -> ModuleRead:
    """Every record of the module modified since `since` (and before `until`), sent as
    the envelope a webhook would have made."""
    read = ModuleRead()
    fields = list_fields(module, source.amount_field, source.cdp_id_field)
    token: str | None = None
    while True:
        if not budget.take():
            read.complete = False
            break
        page = await client.list_page(module, fields, since, token)
        past_until = False
        for record in page.records:
            changed = modified_time(record)
            if until is not None and changed is not None and changed >= until:
                past_until = True  # sorted by Modified_Time: the rest is later still
                break
            read.records += 1
            read.mark = advanced_mark(read.mark, [record])
            envelope = record_envelope(source, module, record, origin, now())
            if envelope is None:
                read.without_cdp_id += 1
                continue
            await send(envelope)
            read.envelopes += 1
        if on_page is not None:
            on_page(read.records)
        token = page.next_page_token
        if token is None or past_until:
            break
    return read


async def recover_from_failures(
    client: ZohoCrmClient,
    source: SourceConfig,
    module: Module,
    *,
    since: datetime,
    until: datetime,
    origin: Origin,
    budget: Budget,
    send: Send,
    now: Callable[[], datetime],
    read: ModuleRead,
) -> None:
    """For each record whose webhook Zoho failed to post in the window, every change of
    its status into a mapped one within the window, with the change's own time: a status
    the record passed through and left before the sweep ran is recovered."""
    record_ids: dict[str, None] = {}
    page = 1
    while True:
        if not budget.take():
            read.complete = False
            return
        failed = await client.webhook_failures(module, since.date(), until.date(), page)
        record_ids |= dict.fromkeys(failed.record_ids)
        if not failed.more:
            break
        page += 1
    for record_id in record_ids:
        changes = await _status_changes(client, module, record_id, budget)
        if changes is None:
            read.complete = False
            return
        wanted = [
            change
            for change in changes
            if since <= change.changed_at < until
            and event_for_status(module, change.status, source.status_map) is not None
        ]
        if not wanted:
            continue
        if not budget.take():
            read.complete = False
            return
        record = await client.get_record(module, record_id)
        if record is None:
            continue
        for envelope in timeline_envelopes(source, module, record, wanted, since, origin, now()):
            await send(envelope)
            read.recovered += 1


async def _status_changes(
    client: ZohoCrmClient, module: Module, record_id: str, budget: Budget
) -> list[StatusChange] | None:
    """The record's status changes, all pages; None when the budget ran out."""
    changes: list[StatusChange] = []
    token: str | None = None
    while True:
        if not budget.take():
            return None
        page = await client.timeline_page(module, record_id, token)
        changes += page.changes
        token = page.next_page_token
        if token is None:
            return changes
