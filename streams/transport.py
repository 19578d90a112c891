"""A Faust transport whose consumer does not skip events of never-committed partitions.

When partitions are assigned, Faust starts fetching before it seeks the stream
partitions to their committed offsets, and drops what it fetched in between. A
partition with a committed offset is sought back, so those events are only processed
twice; a partition without one (a topic the group has never committed on, such as
zoho.webhooks.replay before its first replay) is not, so they were lost. Seeking those
partitions to their beginning — what auto_offset_reset=earliest means — closes the gap.
"""

from faust.transport.drivers import aiokafka as faust_aiokafka


class Consumer(faust_aiokafka.Consumer):
    async def perform_seek(self) -> None:
        await super().perform_seek()
        never_committed = [
            tp
            for tp in self.assignment()
            if not self._is_changelog_tp(tp) and (self._committed_offset.get(tp) or 0) <= 0
        ]
        if never_committed:
            await self._thread.seek_to_beginning(
                *(faust_aiokafka.ensure_aiokafka_TP(tp) for tp in never_committed)
            )
            # Events read before the seek must not make Faust drop their re-reads.
            for tp in never_committed:
                self._read_offset[tp] = None


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
