"""Typed keys for what the ingress application holds."""

from collections.abc import Mapping

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from ingress.forwarder import Forwarder
from ingress.metrics import IngressMetrics
from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.store import SourceStore

SETTINGS = web.AppKey("settings", Settings)
SOURCES = web.AppKey("sources", Mapping[str, SourceConfig])
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
METRICS = web.AppKey("metrics", IngressMetrics)
FORWARDER = web.AppKey("forwarder", Forwarder)
ZOHO_SESSION = web.AppKey("zoho_session", aiohttp.ClientSession)
# Where the admin API and the set-up page write sources; absent with fixed sources.
SOURCE_STORE = web.AppKey("source_store", SourceStore)
# The sources file's sources, imported at start; FORCE_SEED lets them replace the topic's.
SEED = web.AppKey("sources_seed", Mapping[str, SourceConfig])
FORCE_SEED = web.AppKey("sources_seed_force", bool)
