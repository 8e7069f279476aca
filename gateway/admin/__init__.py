"""The admin API under ``/admin/api/``: catalog and stock, orders, the SMS outbox.

``openapi.py`` declares every operation (the served OpenAPI document and request validation
both come from it), ``routes.py`` mounts them behind the bearer token, and ``catalog.py``,
``orders.py`` and ``outbox.py`` hold the handlers over the store's admin modules.
"""

from gateway.admin.routes import add_admin_routes

__all__ = ["add_admin_routes"]
