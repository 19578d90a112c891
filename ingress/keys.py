"""Typed keys for what the ingress application holds."""

from collections.abc import Mapping

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from ingress.metrics import IngressMetrics
from schemas.settings import Settings
from schemas.source import SourceConfig

SETTINGS = web.AppKey("settings", Settings)
SOURCES = web.AppKey("sources", Mapping[str, SourceConfig])
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
METRICS = web.AppKey("metrics", IngressMetrics)
ZOHO_SESSION = web.AppKey("zoho_session", aiohttp.ClientSession)
