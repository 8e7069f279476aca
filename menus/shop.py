"""The shop journey: browse the catalog, fill a cart, order for delivery, follow orders.

States say where the subscriber is; events say what they did. The machine holds no data of
its own: its callbacks write the choices into the session context of the step in progress
(``self.model.view.ctx``). Each state has a screen below that says what it shows and how
its input maps to an event.
"""

from __future__ import annotations

from typing import Any

from statemachine import State, StateChart

from menus.engine import Content, Go, Invalid, Outcome, View, is_digits
from menus.ports import (
    LANGS,
    CancelOrder,
    FindOrder,
    GetOrder,
    ListOrders,
    LoadCustomer,
    OrderDetail,
    OrderLineRequest,
    OrderPending,
    OrderPlaced,
    OrderSummary,
    OutOfStock,
    PlaceOrder,
    Product,
    SaveLanguage,
)
from menus.text import texts


class ShopChart(StateChart[Any]):
    allow_event_without_transition = False
    catch_errors_as_events = False

    home = State(initial=True)
    categories = State()
    products = State()
    product = State()
    quantity = State()
    cart = State()
    remove_item = State()
    zone = State()
    address = State()
    payment = State()
    confirm = State()
    placed = State()
    pending = State()
    orders = State()
    order_detail = State()
    cancel_order = State()
    language = State()
    help = State()

    shop = home.to(categories) | cart.to(categories)
    open_cart = home.to(cart)
    open_orders = home.to(orders)
    open_language = home.to(language)
    open_help = home.to(help)
    pick_category = categories.to(products)
    pick_product = products.to(product)
    start_adding = product.to(quantity)
    add_to_cart = quantity.to(cart)
    start_removing = cart.to(remove_item)
    remove_line = remove_item.to(cart)
    checkout = cart.to(zone)
    pick_zone = zone.to(address)
    set_address = address.to(payment)
    pick_payment = payment.to(confirm)
    place = confirm.to(placed)
    wait = confirm.to(pending)
    ran_out = confirm.to(cart)
    cancel_checkout = confirm.to(cart)
    pick_order = orders.to(order_detail)
    start_cancelling = order_detail.to(cancel_order)
    cancelled = cancel_order.to(order_detail)
    keep_order = cancel_order.to(order_detail)
    set_language = language.to(home)
    go_home = (
        categories.to(home)
        | products.to(home)
        | product.to(home)
        | quantity.to(home)
        | cart.to(home)
        | remove_item.to(home)
        | zone.to(home)
        | address.to(home)
        | payment.to(home)
        | confirm.to(home)
        | placed.to(home)
        | pending.to(home)
        | orders.to(home)
        | order_detail.to(home)
        | cancel_order.to(home)
        | language.to(home)
        | help.to(home)
    )

    @property
    def ctx(self) -> dict[str, Any]:
        ctx: dict[str, Any] = self.model.view.ctx
        return ctx

    def on_pick_category(self, category_id: int) -> None:
        self.ctx["cat"] = category_id

    def on_pick_product(self, product_id: int) -> None:
        self.ctx["prod"] = product_id

    def on_add_to_cart(self, product_id: int, quantity: int) -> None:
        # A cart's identity, so that an abandoned cart is reminded of once, never more.
        self.ctx.setdefault("cid", f"{self.model.view.session_ref}.{self.ctx.get('n', 0)}")
        cart: list[list[int]] = self.ctx.setdefault("cart", [])
        for line in cart:
            if line[0] == product_id:
                line[1] += quantity
                return
        cart.append([product_id, quantity])

    def on_remove_line(self, index: int) -> None:
        del self.ctx["cart"][index]

    def on_checkout(self) -> None:
        # One checkout, one idempotency key: kept until its order is known to be placed, so a
        # confirm repeated in a later session (after a slow store) cannot order twice.
        ctx = self.ctx
        ctx.setdefault("ck", f"{self.model.view.session_ref}.{ctx.get('n', 0)}")

    def on_pick_zone(self, zone_id: int) -> None:
        self.ctx["z"] = zone_id

    def on_set_address(self, address: str) -> None:
        self.ctx["a"] = address

    def on_pick_payment(self, method: str) -> None:
        self.ctx["pay"] = method

    def on_place(self, placed: OrderPlaced) -> None:
        ctx = self.ctx
        ctx["placed"] = [placed.code, placed.total]
        ctx["zone"], ctx["addr"] = ctx.get("z"), ctx.get("a")  # remembered for next time
        ctx["cart"] = []
        ctx["n"] = ctx.get("n", 0) + 1
        ctx.pop("ck", None)  # the next checkout gets a new idempotency key
        ctx.pop("cid", None)

    def on_wait(self) -> None:
        self.ctx["pending"] = True  # the next session asks the store how it ended

    def on_ran_out(self, product_ids: tuple[int, ...]) -> None:
        gone = set(product_ids)
        self.ctx["cart"] = [line for line in self.ctx.get("cart", []) if line[0] not in gone]
        self.ctx["note"] = texts(self.model.view.lang)("error.ran_out")

    def on_pick_order(self, code: str) -> None:
        self.ctx["ord"] = code

    def on_cancelled(self, code: str, done: bool) -> None:
        t = texts(self.model.view.lang)
        self.ctx["note"] = t("order.cancelled" if done else "order.not_cancelled", code=code)

    def on_set_language(self, lang: str) -> None:
        self.ctx["lang"] = lang
        self.ctx["note"] = texts(lang)("language.changed")


# --- screens --------------------------------------------------------------------------------


class _Screen:
    """Defaults: no numbered choice is valid, free text is not expected."""

    def content(self, view: View) -> Content:
        raise NotImplementedError

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        return Invalid()

    def submit(self, view: View, text: str) -> Outcome:
        return Invalid()


def _name(view: View, item: Any) -> str:
    return str(item.name_ko if view.lang == "ko" else item.name_en)


def _cart_lines(view: View) -> list[tuple[Product, int]]:
    """The cart's lines that are still in the catalog (a product may have been withdrawn)."""
    products = view.catalog.products
    return [(products[pid], qty) for pid, qty in view.ctx.get("cart", []) if pid in products]


def _subtotal(view: View) -> int:
    return sum(product.price * qty for product, qty in _cart_lines(view))


class Home(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        count = sum(qty for _, qty in _cart_lines(view))
        return Content(
            title=t("home.title"),
            actions=(
                t("home.shop"),
                t("home.cart", count=count),
                t("home.orders"),
                t("home.language"),
                t("home.help"),
            ),
            nav=False,
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        events = ("shop", "open_cart", "open_orders", "open_language", "open_help")
        return Go(events[action]) if action is not None else Invalid()


class Categories(_Screen):
    def content(self, view: View) -> Content:
        return Content(
            title=view.t("categories.title"),
            rows=[_name(view, c) for c in view.catalog.categories],
            cache_key=("categories",),
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if row is None:
            return Invalid()
        return Go("pick_category", {"category_id": view.catalog.categories[row].id})


class Products(_Screen):
    def _ids(self, view: View) -> tuple[int, ...]:
        return view.catalog.by_category.get(view.ctx.get("cat", -1), ())

    def content(self, view: View) -> Content:
        t = view.t
        category = next((c for c in view.catalog.categories if c.id == view.ctx.get("cat")), None)
        rows = []
        for pid in self._ids(view):
            product = view.catalog.products[pid]
            if product.stock > 0:
                rows.append(
                    t("products.line", name=_name(view, product), price=t.money(product.price))
                )
            else:
                rows.append(t("products.sold_out", name=_name(view, product)))
        return Content(
            title=t("products.title", category=_name(view, category) if category else ""),
            rows=rows,
            cache_key=("products", view.ctx.get("cat")),
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if row is None:
            return Invalid()
        return Go("pick_product", {"product_id": self._ids(view)[row]})


def _selected(view: View) -> Product | None:
    return view.catalog.products.get(view.ctx.get("prod", -1))


def _room(view: View, product: Product) -> int:
    """How many more of ``product`` this cart may take."""
    in_cart: int = sum(qty for pid, qty in view.ctx.get("cart", []) if pid == product.id)
    cap: int = view.settings.max_quantity
    return max(0, min(product.stock, cap) - in_cart)


class ProductScreen(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        product = _selected(view)
        if product is None:
            return Content(title=t("error.sold_out"), reasons=())
        description = product.description_ko if view.lang == "ko" else product.description_en
        available = _room(view, product) > 0
        return Content(
            title=t(
                "product.body",
                name=_name(view, product),
                price=t.money(product.price),
                description="{elastic}",
            ),
            elastic=description,
            actions=(t("product.add"),) if available else (),
            footer="" if available else t("product.sold_out"),
            reasons=("error.choice", "error.sold_out"),
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        product = _selected(view)
        if action != 0 or product is None:
            return Invalid()
        if _room(view, product) <= 0:
            return Invalid("error.sold_out")
        return Go("start_adding")


class Quantity(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        product = _selected(view)
        if product is None:
            return Content(title=t("error.sold_out"), reasons=())
        room = _room(view, product)
        return Content(
            title=t(
                "quantity.prompt", name=_name(view, product), price=t.money(product.price), max=room
            ),
            text_input=True,
            reasons=("error.quantity", "error.sold_out"),
            reason_args={"max": room},
        )

    def submit(self, view: View, text: str) -> Outcome:
        product = _selected(view)
        if product is None:
            return Invalid("error.sold_out")
        room = _room(view, product)
        if room <= 0:
            return Invalid("error.sold_out")
        if not is_digits(text) or not 1 <= int(text) <= room:
            return Invalid("error.quantity", {"max": room})
        return Go("add_to_cart", {"product_id": product.id, "quantity": int(text)})


class Cart(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        lines = _cart_lines(view)
        if not lines:
            return Content(
                title=t("cart.empty"), actions=(t("cart.shop"),), reasons=("error.choice",)
            )
        return Content(
            title=t("cart.title", total=t.money(_subtotal(view))),
            rows=[
                t("cart.line", quantity=qty, name=_name(view, p), amount=t.money(p.price * qty))
                for p, qty in lines
            ],
            numbered=False,
            actions=(t("cart.checkout"), t("cart.remove"), t("cart.continue")),
            reasons=("error.choice", "error.ran_out"),
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if not _cart_lines(view):
            return Go("shop") if action == 0 else Invalid()
        events = ("checkout", "start_removing", "shop")
        return Go(events[action]) if action is not None else Invalid()


class RemoveItem(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        return Content(
            title=t("remove.title"),
            rows=[t("remove.line", quantity=q, name=_name(view, p)) for p, q in _cart_lines(view)],
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if row is None:
            return Invalid()
        product = _cart_lines(view)[row][0]
        index = [pid for pid, _ in view.ctx["cart"]].index(product.id)
        return Go("remove_line", {"index": index})


class ZoneScreen(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        return Content(
            title=t("zone.title"),
            rows=[
                t("zone.line", name=_name(view, z), fee=t.money(z.fee)) for z in view.catalog.zones
            ],
            cache_key=("zones",),
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if row is None:
            return Invalid()
        return Go("pick_zone", {"zone_id": view.catalog.zones[row].id})


ADDRESS_MIN, ADDRESS_MAX = 3, 60


class Address(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        saved = view.ctx.get("addr")
        if saved:
            return Content(
                title=t("address.saved", address="{elastic}"),
                elastic=saved,
                text_input=True,
                reasons=("error.address",),
            )
        return Content(title=t("address.prompt"), text_input=True, reasons=("error.address",))

    def submit(self, view: View, text: str) -> Outcome:
        saved = view.ctx.get("addr")
        if saved and text == "1":
            return Go("set_address", {"address": saved})
        address = " ".join(text.split())
        if not ADDRESS_MIN <= len(address) <= ADDRESS_MAX or not _is_plain_text(address):
            return Invalid("error.address")
        return Go("set_address", {"address": address})


def _is_plain_text(text: str) -> bool:
    """Printable, and nothing the edge had to replace (U+FFFD stands for a byte that was not
    text): an address is read by a courier and kept by the store."""
    return text.isprintable() and "\ufffd" not in text


PAYMENT_METHODS = ("cod",)


class Payment(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        return Content(
            title=t("payment.title"), actions=tuple(t(f"payment.{m}") for m in PAYMENT_METHODS)
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if action is None:
            return Invalid()
        return Go("pick_payment", {"method": PAYMENT_METHODS[action]})


def _zone(view: View) -> Any:
    return next((z for z in view.catalog.zones if z.id == view.ctx.get("z")), None)


class Confirm(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        zone = _zone(view)
        fee = zone.fee if zone else 0
        subtotal = _subtotal(view)
        return Content(
            title=t(
                "confirm.body",
                subtotal=t.money(subtotal),
                fee=t.money(fee),
                total=t.money(subtotal + fee),
                zone=_name(view, zone) if zone else "",
                address="{elastic}",
                payment=t(f"payment.{view.ctx.get('pay', 'cod')}"),
            ),
            elastic=view.ctx.get("a", ""),
            actions=(t("confirm.confirm"), t("confirm.cancel")),
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if action == 1:
            return Go("cancel_checkout")
        if action != 0:
            return Invalid()
        ctx = view.ctx
        lines = tuple(OrderLineRequest(pid, qty) for pid, qty in ctx.get("cart", []))
        zone = _zone(view)
        if not lines:
            return Invalid("error.empty_cart")
        if zone is None or not ctx.get("a"):
            return Invalid()
        result = view.fetch(
            PlaceOrder(
                idempotency_key=_order_key(view),
                msisdn=view.msisdn,
                lang=view.lang,
                lines=lines,
                zone_id=zone.id,
                address=ctx["a"],
                payment=ctx.get("pay", "cod"),
            )
        )
        if isinstance(result, OutOfStock):
            return Go("ran_out", {"product_ids": result.product_ids})
        if isinstance(result, OrderPending):
            return Go("wait")
        return Go("place", {"placed": result})


def _order_key(view: View) -> str:
    return f"{view.msisdn}:{view.ctx.get('ck') or view.session_ref}"


class Placed(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        code, total = view.ctx.get("placed", ["", 0])
        return Content(
            title=t("placed.body", code=code, total=t.money(total)), end=True, reasons=()
        )


class Pending(_Screen):
    def content(self, view: View) -> Content:
        return Content(title=view.t("placed.pending"), end=True, reasons=())


def _orders(view: View) -> tuple[OrderSummary, ...]:
    orders: tuple[OrderSummary, ...] = view.fetch(ListOrders(view.msisdn))
    return orders


class Orders(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        orders = _orders(view)
        if not orders:
            return Content(title=t("orders.empty"))
        return Content(
            title=t("orders.title"),
            rows=[t("orders.line", code=o.code, status=t(f"status.{o.status}")) for o in orders],
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if row is None:
            return Invalid()
        return Go("pick_order", {"code": _orders(view)[row].code})


class OrderDetailScreen(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        detail: OrderDetail | None = view.fetch(GetOrder(view.msisdn, view.ctx.get("ord", "")))
        if detail is None:
            return Content(title=t("orders.empty"))
        return Content(
            title=t(
                "order.body",
                code=detail.code,
                status=t(f"status.{detail.status}"),
                date=detail.created_at.strftime("%m-%d"),
                total=t.money(detail.total),
            ),
            rows=[
                t(
                    "order.line",
                    quantity=line.quantity,
                    name=line.name_ko if view.lang == "ko" else line.name_en,
                )
                for line in detail.lines
            ],
            numbered=False,
            actions=(t("order.cancel"),) if detail.status in CANCELLABLE else (),
            reasons=("error.choice", "order.cancelled", "order.not_cancelled"),
            reason_args={"code": detail.code},
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        return Go("start_cancelling") if action == 0 else Invalid()


CANCELLABLE = frozenset({"placed", "confirmed"})  # before the order leaves the shop


class CancelOrderScreen(_Screen):
    def content(self, view: View) -> Content:
        t = view.t
        return Content(
            title=t("order.cancel_confirm", code=view.ctx.get("ord", "")),
            actions=(t("order.cancel_yes"), t("order.cancel_no")),
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        code = view.ctx.get("ord", "")
        if action == 1:
            return Go("keep_order")
        if action != 0:
            return Invalid()
        done = view.fetch(CancelOrder(view.msisdn, code))
        return Go("cancelled", {"code": code, "done": bool(done)})


class Language(_Screen):
    def content(self, view: View) -> Content:
        return Content(
            title=view.t("language.title"), rows=[texts(lang)("language.name") for lang in LANGS]
        )

    def choose(self, view: View, row: int | None, action: int | None) -> Outcome:
        if row is None:
            return Invalid()
        lang = LANGS[row]
        view.fetch(SaveLanguage(view.msisdn, lang))
        return Go("set_language", {"lang": lang})


class Help(_Screen):
    def content(self, view: View) -> Content:
        return Content(title=view.t("help.body"))


class Shop:
    """The shop journey, as the engine sees it."""

    chart = ShopChart
    home = "home"
    screens = {
        "home": Home(),
        "categories": Categories(),
        "products": Products(),
        "product": ProductScreen(),
        "quantity": Quantity(),
        "cart": Cart(),
        "remove_item": RemoveItem(),
        "zone": ZoneScreen(),
        "address": Address(),
        "payment": Payment(),
        "confirm": Confirm(),
        "placed": Placed(),
        "pending": Pending(),
        "orders": Orders(),
        "order_detail": OrderDetailScreen(),
        "cancel_order": CancelOrderScreen(),
        "language": Language(),
        "help": Help(),
    }

    def begin(self, view: View) -> None:
        """A new session: know the subscriber (language, saved address) before home."""
        ctx = view.ctx
        for key in ("placed", "note", "z", "a", "pay", "ord", "prod"):
            ctx.pop(key, None)
        if ctx.pop("pending", False):
            # The last order outlasted its hop: if it went through, its cart is done with.
            if view.fetch(FindOrder(view.msisdn, _order_key(view))) is not None:
                ctx["cart"] = []
                ctx["n"] = ctx.get("n", 0) + 1
                ctx.pop("ck", None)
                ctx.pop("cid", None)
        if "lang" in ctx:
            return
        profile = view.fetch(LoadCustomer(view.msisdn))
        if profile is None:
            ctx["lang"] = view.settings.default_language
            return
        ctx["lang"] = profile.lang
        if profile.zone_id is not None:
            ctx["zone"] = profile.zone_id
        if profile.address:
            ctx["addr"] = profile.address

    def history_after(self, event: str) -> str | None:
        # After adding to the cart, "back" from the cart returns to the product list.
        return "products" if event == "add_to_cart" else None
