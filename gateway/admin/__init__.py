"""The admin API under ``/admin/api/``: catalog and stock, orders, the SMS outbox.

``routes.py`` declares every route once (method, path, summary, handler, input, answer,
status codes) and mounts them behind the bearer token; ``api.py`` turns a declaration into
request validation and the answer's serialisation, ``openapi.py`` into the OpenAPI document;
``shapes.py`` holds each route's input. ``catalog.py``, ``orders.py``, ``outbox.py`` and
``reports.py`` are the handlers, over the store's ``catalog_edits``, ``catalog_csv``,
``order_queries`` and ``outbox_queries``, which declare the rows' shapes.
"""

from gateway.admin.routes import add_admin_routes

__all__ = ["add_admin_routes"]
