"""What the console app holds, under one typed key."""

from dataclasses import dataclass, field

from aiohttp import web

from ingress.console.actions import Jobs
from ingress.console.activity import ActivityIndex
from ingress.console.feed import Feed
from ingress.console.sources import ConsoleSources
from schemas.settings import Settings


@dataclass
class Console:
    settings: Settings
    store: ConsoleSources
    index: ActivityIndex
    feed: Feed
    jobs: Jobs = field(default_factory=Jobs)


CONSOLE = web.AppKey("console", Console)
