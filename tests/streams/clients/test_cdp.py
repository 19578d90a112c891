"""The sink's delivery loop, with a scripted CDP: nothing is dropped, only refused
events are rejected."""

from collections.abc import Callable, Sequence

from schemas.conversion import ConversionEvent
from streams.clients.cdp import CdpAnswer, deliver
from tests.builders import conversion_event


def event(number: int) -> ConversionEvent:
    return conversion_event(event_id=f"e{number}", record_id=str(number), cdp_id=f"c{number}")


class ScriptedCdp:
    def __init__(self, answer: Callable[[list[str]], CdpAnswer]) -> None:
        self.answer = answer
        self.posts: list[list[str]] = []
        self.delivered: list[str] = []
        self.rejected: list[tuple[str, int | None]] = []
        self.sleeps: list[float] = []

    async def post(self, events: Sequence[ConversionEvent]) -> CdpAnswer:
        ids = [e.event_id for e in events]
        self.posts.append(ids)
        answer = self.answer(ids)
        if answer.status == 200:
            self.delivered += ids
        return answer

    async def reject(self, event: ConversionEvent, answer: CdpAnswer) -> None:
        self.rejected.append((event.event_id, answer.status))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def run(self, events: list[ConversionEvent]) -> None:
        await deliver(events, self.post, self.reject, max_backoff_s=5, sleep=self.sleep)


async def test_a_cdp_outage_is_waited_out() -> None:
    answers = iter([CdpAnswer(503), CdpAnswer(None), CdpAnswer(429, retry_after="2")])
    cdp = ScriptedCdp(lambda ids: next(answers, CdpAnswer(200)))  # noqa: ARG005 - the post signature
    await cdp.run([event(1), event(2)])
    assert cdp.delivered == ["e1", "e2"] and cdp.rejected == []
    assert len(cdp.sleeps) == 3 and cdp.sleeps[2] >= 2


async def test_one_refused_event_is_isolated_and_the_rest_delivered() -> None:
    cdp = ScriptedCdp(
        lambda ids: CdpAnswer(400, '{"error":"bad"}') if "e3" in ids else CdpAnswer(200)
    )
    await cdp.run([event(n) for n in range(1, 6)])
    assert sorted(cdp.delivered) == ["e1", "e2", "e4", "e5"]
    assert cdp.rejected == [("e3", 400)]
    assert cdp.posts[0] == ["e1", "e2", "e3", "e4", "e5"]
    assert cdp.sleeps == []


async def test_a_post_that_raises_is_retried_not_dropped() -> None:
    calls = {"n": 0}

    def flaky(ids: list[str]) -> CdpAnswer:  # noqa: ARG001 - the post signature
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug in the client")
        return CdpAnswer(200)

    cdp = ScriptedCdp(flaky)
    await cdp.run([event(1)])
    assert cdp.delivered == ["e1"] and len(cdp.sleeps) == 1


async def test_nothing_to_deliver_posts_nothing() -> None:
    cdp = ScriptedCdp(lambda ids: CdpAnswer(200))  # noqa: ARG005 - the post signature
    await cdp.run([])
    assert cdp.posts == []
