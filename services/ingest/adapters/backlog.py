"""How many records wait for a consumer group: the end offsets of its topics' partitions minus the
group's committed offsets (the beginning where it has committed none), read by a consumer that carries
the group's id but never joins it (so it causes no rebalance)."""

from __future__ import annotations

from aiokafka import TopicPartition

from clonedesk.core.kafka import make_consumer


class GroupBacklog:
    def __init__(self, bootstrap: str, group_id: str, topics: tuple[str, ...]):
        self.bootstrap, self.group_id, self.topics = bootstrap, group_id, topics
        self._consumer = None

    async def start(self) -> None:
        self._consumer = make_consumer(self.bootstrap, group_id=self.group_id)  # needs the running loop
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def _partitions(self) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for topic in self.topics
                for p in sorted(self._consumer.partitions_for_topic(topic) or ())]

    async def records_waiting(self) -> int:
        """Started on first use."""
        return sum(end - committed for committed, end in (await self.waiting_by_partition()).values())

    async def waiting_by_partition(self) -> dict[str, tuple[int, int]]:
        """"topic:partition" → (the group's committed offset, the end offset), for each partition with
        records waiting."""
        if self._consumer is None:
            await self.start()
        partitions = self._partitions()
        if not partitions:
            await self._consumer.topics()  # refresh the metadata once: the topics may be new
            partitions = self._partitions()
        if not partitions:
            return {}
        ends = await self._consumer.end_offsets(partitions)
        starts = await self._consumer.beginning_offsets(partitions)
        waiting = {}
        for tp in partitions:
            committed = await self._consumer.committed(tp)
            committed = committed if committed is not None else starts[tp]
            if ends[tp] > committed:
                waiting[f"{tp.topic}:{tp.partition}"] = (committed, ends[tp])
        return waiting
