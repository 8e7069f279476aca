"""Typed application keys: everything the app holds, named once."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from gateway.edge import Handler
from gateway.ends import SessionEnds
from gateway.hop import Gateway
from gateway.keywords import Commands
from gateway.metrics import Metrics
from gateway.redis_clients import Client
from gateway.replies import ReplyGuard
from gateway.settings import Settings
from gateway.sms.dispatcher import Dispatcher
from store.db import Database

SETTINGS = web.AppKey("settings", Settings)
REDIS: web.AppKey[Client] = web.AppKey("redis")  # a union: the type goes on the name
DATABASE = web.AppKey("database", Database)
HTTP = web.AppKey("http", aiohttp.ClientSession)
GATEWAY = web.AppKey("gateway", Gateway)
ENDS = web.AppKey("ends", SessionEnds)
COMMANDS = web.AppKey("commands", Commands)
METRICS = web.AppKey("metrics", Metrics)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
REPLIES = web.AppKey("replies", ReplyGuard)
OPEN_CALLBACKS = web.AppKey("open_callbacks", list[str])  # served without authentication
# The USSD routes by (method, exact path), for requests that skip the router (gateway.lanes).
FAST_LANE: web.AppKey[dict[tuple[str, str], Handler]] = web.AppKey("fast_lane")
