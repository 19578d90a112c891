"""The worker follows the sources topic for as long as it runs."""

import mode

from streams.app import app, sources


@app.service
class FollowSources(mode.Service):
    async def on_start(self) -> None:
        await sources.start()

    async def on_stop(self) -> None:
        await sources.stop()
