"""The shop journey: browse the catalog, fill a cart, order for delivery, follow orders.

Three declarations, read top to bottom: the chart (every state and transition), the context
(what a session remembers, and what each event does to it), and one screen per state (what it
shows, and which event each of its options sends). Adding a screen is a state and its
transitions in the chart, one screen class, and its texts in ``menus/text/en.toml`` and
``ko.toml``; ``okryu flow check`` names whichever is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from statemachine import State, StateChart

from menus.journey import (
    Context,
    Go,
    Invalid,
    Journey,
    Option,
    Outcome,
    Prompt,
    Row,
    Rows,
    Screen,
    View,
    is_digits,
)
from menus.ports import (
    CUSTOMER_CANCELLABLE,
    LANGS,
    CancelOrder,
    CardDeclined,
    CardView,
    Catalog,
    ChangePin,
    CheckPin,
    FindOrder,
    GetOrder,
    Lang,
    ListCards,
    ListOrders,
    LoadCustomer,
    OrderDetail,
    OrderLineRequest,
    OrderLineView,
    OrderPending,
    OrderPlaced,
    OrderSummary,
    OutOfStock,
    PlaceOrder,
    Product,
    SaveLanguage,
    Zone,
)
from menus.screens import measure
from menus.text import texts


class ShopChart(StateChart[Any]):
    """Where a subscriber can be, and what takes them where. ``0`` sends ``back`` and ``00``
    sends ``go_home`` from any screen that shows them."""

    allow_event_without_transition = False
    catch_errors_as_events = False

    home = State(initial=True)
    categories = State()
    products = State()
    product = State()
    quantity = State()
    cart = State()
    change_item = State()
    line = State()
    line_quantity = State()
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
    # shop cards (issue 13)
    my_card = State()
    card_pin = State()
    pin_old = State()
    pin_new = State()

    shop = home.to(categories) | cart.to(categories)
    open_cart = home.to(cart)
    open_orders = home.to(orders)
    open_language = home.to(language)
    open_help = home.to(help)
    pick_category = categories.to(products)
    pick_product = products.to(product)
    start_adding = product.to(quantity)
    add_to_cart = quantity.to(cart)
    start_changing = cart.to(change_item)
    pick_line = change_item.to(line)
    remove_line = line.to(cart)
    start_requantity = line.to(line_quantity)
    set_quantity = line_quantity.to(cart)
    checkout = cart.to(zone)
    pick_zone = zone.to(address)
    set_address = address.to(payment)
    pick_payment = payment.to(confirm)
    place = confirm.to(placed) | card_pin.to(placed)
    wait = confirm.to(pending) | card_pin.to(pending)
    ran_out = confirm.to(cart) | card_pin.to(cart)
    cancel_checkout = confirm.to(cart)
    pick_order = orders.to(order_detail)
    start_cancelling = order_detail.to(cancel_order)
    cancelled = cancel_order.to(order_detail)
    keep_order = cancel_order.to(order_detail)
    set_language = language.to(home)
    # shop cards (issue 13): pay with one, see balances, change a PIN
    pick_card = payment.to(card_pin)
    open_card = home.to(my_card)
    start_pin_change = my_card.to(pin_old)
    pin_checked = pin_old.to(pin_new)
    pin_changed = pin_new.to(my_card)
    go_home = home.from_.any()  # type: ignore[no-untyped-call]
    back = (
        categories.to(home)
        | products.to(categories)
        | product.to(products)
        | quantity.to(product)
        | cart.to(home)
        | change_item.to(cart)
        | line.to(change_item)
        | line_quantity.to(line)
        | zone.to(cart)
        | address.to(zone)
        | payment.to(address)
        | confirm.to(payment)
        | orders.to(home)
        | order_detail.to(orders)
        | cancel_order.to(order_detail)
        | language.to(home)
        | help.to(home)
        | card_pin.to(payment)
        | my_card.to(home)
        | pin_old.to(my_card)
        | pin_new.to(my_card)
    )


@dataclass
class ShopContext(Context):
    """What a shopper's session remembers between hops."""

    cart: list[list[int]] = field(default_factory=list)  # [product id, quantity], in order
    cart_id: str = ""  # this cart's identity: one reminder per abandoned cart
    checkout_key: str = ""  # this checkout's idempotency key, until its order is placed
    orders_placed: int = 0  # keeps the next cart's identity and key new
    category: int = 0
    product: int = 0
    zone: int = 0  # the district of this checkout
    address: str = ""  # the address of this checkout
    payment: str = "cod"
    saved_zone: int = 0  # the district and address of the last order
    saved_address: str = ""
    placed: list[Any] = field(default_factory=list)  # [code, total] of the order just placed
    pending: bool = False  # the last order outlasted its hop: ask the store how it ended
    order: str = ""  # the code of the order looked at
    line: int = -1  # the cart line whose quantity is being changed (its index)
    known: bool = False  # the subscriber's profile has been read
    card: int = 0  # the shop card paying for this checkout, or whose PIN is being changed
    pin_ok: int = 0  # the card whose old PIN was just given (for the new one, next)

    # The names the first release stored these fields under (its sessions may be in flight).
    renamed: ClassVar[Mapping[str, str]] = {
        "zone": "saved_zone", "addr": "saved_address", "z": "zone", "a": "address",
        "cat": "category", "prod": "product", "ord": "order", "pay": "payment",
        "cid": "cart_id", "ck": "checkout_key", "n": "orders_placed",
    }  # fmt: skip

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> ShopContext:
        ctx = super().load(data)
        assert isinstance(ctx, ShopContext)
        if "journey" not in data and "lang" in data:
            ctx.known = True  # the first release read the profile when it set the language
        return ctx

    def on_pick_category(self, category_id: int) -> None:
        self.category = category_id

    def on_pick_product(self, product_id: int) -> None:
        self.product = product_id

    def on_add_to_cart(self, product_id: int, quantity: int, cart_id: str) -> None:
        self.cart_id = self.cart_id or cart_id
        for line in self.cart:
            if line[0] == product_id:
                line[1] += quantity
                return
        self.cart.append([product_id, quantity])

    def on_pick_line(self, index: int) -> None:
        self.line = index

    def on_remove_line(self, index: int) -> None:
        if 0 <= index < len(self.cart):
            del self.cart[index]
        self.line = -1

    def on_set_quantity(self, index: int, quantity: int) -> None:
        if 0 <= index < len(self.cart):
            self.cart[index][1] = quantity
        self.line = -1

    def on_checkout(self, key: str) -> None:
        # One checkout, one idempotency key: kept until its order is known to be placed, so a
        # confirm repeated in a later session (after a slow store) cannot order twice.
        self.checkout_key = self.checkout_key or key

    def on_pick_zone(self, zone_id: int) -> None:
        self.zone = zone_id

    def on_set_address(self, address: str) -> None:
        self.address = address

    def on_pick_payment(self, method: str) -> None:
        self.payment, self.card = method, 0

    def on_pick_card(self, card: int) -> None:
        self.payment, self.card = "card", card

    def on_start_pin_change(self, card: int) -> None:
        self.card, self.pin_ok = card, 0

    def on_pin_checked(self, card: int) -> None:
        self.pin_ok = card

    def on_pin_changed(self) -> None:
        self.pin_ok = 0

    def on_back(self) -> None:
        self.pin_ok = 0  # leaving the new-PIN screen: the old PIN is asked again

    def on_go_home(self) -> None:
        super().on_go_home()
        self.pin_ok = 0

    def on_place(self, code: str, total: int, card: str = "") -> None:
        self.placed = [code, total, card] if card else [code, total]
        self.saved_zone, self.saved_address = self.zone, self.address  # offered next time
        self._cart_done()

    def on_wait(self) -> None:
        self.pending = True  # the next session asks the store how it ended

    def on_ran_out(self, product_ids: Sequence[int]) -> None:
        gone = set(product_ids)
        self.cart = [line for line in self.cart if line[0] not in gone]

    def on_pick_order(self, code: str) -> None:
        self.order = code

    def on_set_language(self, lang: Lang) -> None:
        self.lang = lang

    def _cart_done(self) -> None:
        self.cart, self.cart_id, self.checkout_key = [], "", ""
        self.orders_placed += 1

    def abandoned_cart(self) -> str | None:
        """The identity of a cart worth a reminder if the session is cut now, or None."""
        return self.cart_id if self.cart and self.cart_id else None


class ShopScreen(Screen[ShopContext]):
    """The shop's screens: every subclass is the screen of its ``state``."""


# --- helpers the screens share ----------------------------------------------------------------


def _name(view: View[ShopContext], item: Any) -> str:
    return str(item.name_ko if view.lang == "ko" else item.name_en)


def _cart_lines(view: View[ShopContext]) -> list[tuple[Product, int]]:
    """The cart's lines that are still in the catalog (a product may have been withdrawn)."""
    products = view.catalog.products
    return [(products[pid], qty) for pid, qty in view.ctx.cart if pid in products]


def _subtotal(view: View[ShopContext]) -> int:
    return sum(product.price * qty for product, qty in _cart_lines(view))


def _selected(view: View[ShopContext]) -> Product | None:
    return view.catalog.products.get(view.ctx.product)


def _room(view: View[ShopContext], product: Product) -> int:
    """How many more of ``product`` this cart may take."""
    in_cart = sum(qty for pid, qty in view.ctx.cart if pid == product.id)
    cap: int = view.settings.max_quantity
    return max(0, min(product.stock, cap) - in_cart)


def _zone(view: View[ShopContext]) -> Zone | None:
    return next((z for z in view.catalog.zones if z.id == view.ctx.zone), None)


def _with_some_in_cart(view: View[ShopContext]) -> list[dict[str, Any]]:
    """A product's screens once one of it is in the cart, and once all there is: a sample for
    ``okryu flow check`` that what they show follows the cart (their ``cache_key``)."""
    first = next(iter(view.catalog.products), None)
    if first is None:
        return []
    return [{"product": first, "cart": [[first, n]]} for n in (1, 1_000_000)]


def _key(view: View[ShopContext]) -> str:
    """A new identity for this record's next cart or checkout."""
    return f"{view.session_ref}.{view.ctx.orders_placed}"


def _order_key(view: View[ShopContext]) -> str:
    return f"{view.msisdn}:{view.ctx.checkout_key or view.session_ref}"


# --- the screens ------------------------------------------------------------------------------


class Home(ShopScreen):
    state = "home"
    title = "home.title"
    nav = False
    options = (
        Option("home.shop", "shop"),
        Option("home.cart", "open_cart"),
        Option("home.orders", "open_orders"),
        Option("home.language", "open_language"),
        Option("home.help", "open_help"),
        Option("home.card", "open_card"),
    )

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        return {"count": len(_cart_lines(view))}  # products, not units: "Cart (3)"

    def cache_key(self, view: View[ShopContext]) -> tuple[Any, ...]:
        return (len(_cart_lines(view)),)  # every session starts here: built once per count

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        return [{}, {"cart": []}]  # the fullest cart, and none (``okryu flow check``: the key)


class Categories(ShopScreen):
    state = "categories"
    title = "categories.title"
    rows = Rows("categories.line", event="pick_category", elastic="name")

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        return [
            Row({"name": _name(view, c)}, {"category_id": c.id}) for c in view.catalog.categories
        ]

    def cache_key(self, view: View[ShopContext]) -> tuple[Any, ...]:
        return ()


class Products(ShopScreen):
    state = "products"
    title = "products.title"
    elastic = "category"
    rows = Rows("products.line", event="pick_product", elastic="name")

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        found = (c for c in view.catalog.categories if c.id == view.ctx.category)
        category = next(found, None)
        return {"category": _name(view, category) if category else ""}

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        t = view.t
        rows = []
        for pid in view.catalog.by_category.get(view.ctx.category, ()):
            product = view.catalog.products[pid]
            price = t.money(product.price) if product.stock > 0 else t("products.sold_out")
            rows.append(Row({"name": _name(view, product), "price": price}, {"product_id": pid}))
        return rows

    def cache_key(self, view: View[ShopContext]) -> tuple[Any, ...]:
        return (view.ctx.category,)

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        return [{"category": c.id} for c in view.catalog.categories]


class ProductPage(ShopScreen):
    state = "product"
    title = "product.body"
    titles = ("error.sold_out",)
    elastic = ("description", "name")
    options = (Option("product.add", "start_adding", when="available", do="add"),)
    footer = "product.sold_out"
    footer_when = "sold_out"
    reasons = ("error.choice", "error.sold_out")

    def title_key(self, view: View[ShopContext]) -> str:
        return self.title if _selected(view) else "error.sold_out"

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        product = _selected(view)
        if product is None:
            return {}
        t = view.t
        description = product.description_ko if view.lang == "ko" else product.description_en
        return {"name": _name(view, product), "price": t.money(product.price),
                "description": description}  # fmt: skip

    def available(self, view: View[ShopContext]) -> bool:
        product = _selected(view)
        return product is not None and _room(view, product) > 0

    def sold_out(self, view: View[ShopContext]) -> bool:
        return _selected(view) is not None and not self.available(view)

    def add(self, view: View[ShopContext]) -> Outcome:
        return Go("start_adding") if self.available(view) else Invalid("error.sold_out")

    def cache_key(self, view: View[ShopContext]) -> tuple[Any, ...] | None:
        # The same for every shopper who may add it (or may not): the product's page is read
        # by many, and built once per reading of the catalog.
        product = _selected(view)
        return None if product is None else (product.id, self.available(view))

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        every = [{"product": pid, "cart": []} for pid in view.catalog.products]
        return [*every, *_with_some_in_cart(view), {"product": -1}]


class QuantityPrompt(ShopScreen):
    state = "quantity"
    title = "quantity.prompt"
    titles = ("error.sold_out",)
    elastic = "name"
    prompt = Prompt("add_to_cart")
    reasons = ("error.quantity", "error.sold_out")

    def title_key(self, view: View[ShopContext]) -> str:
        return self.title if _selected(view) else "error.sold_out"

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        product = _selected(view)
        if product is None:
            return {"max": 0}
        return {"name": _name(view, product), "price": view.t.money(product.price),
                "max": _room(view, product)}  # fmt: skip

    def parse(self, view: View[ShopContext], text: str) -> Outcome:
        product = _selected(view)
        room = _room(view, product) if product is not None else 0
        if product is None or room <= 0:
            return Invalid("error.sold_out")
        if not is_digits(text) or not 1 <= int(text) <= room:
            return Invalid("error.quantity", {"max": room})
        cart_id = _key(view)
        return Go("add_to_cart", {"product_id": product.id, "quantity": int(text),
                                  "cart_id": cart_id})  # fmt: skip

    def cache_key(self, view: View[ShopContext]) -> tuple[Any, ...] | None:
        product = _selected(view)
        return None if product is None else (product.id, _room(view, product))

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        every = [{"product": pid, "cart": []} for pid in view.catalog.products]
        return [*every, *_with_some_in_cart(view)]


class CartPage(ShopScreen):
    state = "cart"
    title = "cart.title"
    titles = ("cart.empty",)
    rows = Rows("cart.line", elastic="name", fit=3)  # at a glance: names cut, not lines
    options = (
        Option("cart.checkout", "checkout", when="filled", do="checkout"),
        Option("cart.change", "start_changing", when="filled"),
        Option("cart.continue", "shop", when="filled"),
        Option("cart.shop", "shop", when="empty"),
    )
    reasons = ("error.choice", "error.ran_out", "cart.removed", "cart.changed")

    def title_key(self, view: View[ShopContext]) -> str:
        return self.title if _cart_lines(view) else "cart.empty"

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        return {"total": view.t.money(_subtotal(view)), "count": len(_cart_lines(view))}

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        return [Row({"quantity": qty, "name": _name(view, p)}) for p, qty in _cart_lines(view)]

    def filled(self, view: View[ShopContext]) -> bool:
        return bool(_cart_lines(view))

    def empty(self, view: View[ShopContext]) -> bool:
        return not _cart_lines(view)

    def checkout(self, view: View[ShopContext]) -> Outcome:
        return Go("checkout", {"key": _key(view)})

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        return [{}, {"cart": []}]


class ChangeItem(ShopScreen):
    state = "change_item"
    title = "change.title"
    rows = Rows("change.line", event="pick_line", elastic="name")

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        index = {pid: i for i, (pid, _) in enumerate(view.ctx.cart)}
        return [
            Row({"quantity": qty, "name": _name(view, p)}, {"index": index[p.id]})
            for p, qty in _cart_lines(view)
        ]


def _line(view: View[ShopContext]) -> tuple[Product, int] | None:
    """The cart line being changed, while it is still in the cart and the catalog."""
    cart, index = view.ctx.cart, view.ctx.line
    if not 0 <= index < len(cart):
        return None
    pid, qty = cart[index]
    product = view.catalog.products.get(pid)
    return (product, qty) if product is not None else None


def _line_values(view: View[ShopContext]) -> dict[str, Any]:
    line = _line(view)
    if line is None:
        return {"name": "", "quantity": 0, "max": 0}
    product, qty = line
    return {"name": _name(view, product), "quantity": qty, "max": _most(view, product)}


class LineChoice(ShopScreen):
    state = "line"
    title = "change.line_title"
    elastic = "name"
    options = (
        Option("change.remove", "remove_line", do="remove"),
        Option("change.quantity", "start_requantity", when="changeable"),
    )

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        return _line_values(view)

    def changeable(self, view: View[ShopContext]) -> bool:
        line = _line(view)
        return line is not None and _most(view, line[0]) > 0

    def remove(self, view: View[ShopContext]) -> Outcome:
        if _line(view) is not None:
            view.ctx.note = view.t("cart.removed")
        return Go("remove_line", {"index": view.ctx.line})

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        return [{"line": 0}, {"line": -1}]


class LineQuantity(ShopScreen):
    state = "line_quantity"
    title = "change.prompt"
    elastic = "name"
    prompt = Prompt("set_quantity")
    reasons = ("error.quantity",)

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        return _line_values(view)

    def parse(self, view: View[ShopContext], text: str) -> Outcome:
        line = _line(view)
        if line is None:  # gone from the cart or the catalog meanwhile: nothing to change
            return Go("set_quantity", {"index": -1, "quantity": 0})
        most = _most(view, line[0])
        if not is_digits(text) or not 1 <= int(text) <= most:
            return Invalid("error.quantity", {"max": most})
        view.ctx.note = view.t("cart.changed")
        return Go("set_quantity", {"index": view.ctx.line, "quantity": int(text)})

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        return [{"line": 0}, {"line": -1}]


def _most(view: View[ShopContext], product: Product) -> int:
    """The most of ``product`` its cart line may hold: stock and the per-order cap, less what
    other lines hold (none: a product has one line)."""
    cap: int = view.settings.max_quantity
    return max(0, min(product.stock, cap))


class Districts(ShopScreen):
    state = "zone"
    title = "zone.title"
    rows = Rows("zone.line", event="pick_zone", elastic="name")

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        t = view.t
        return [
            Row({"name": _name(view, z), "fee": t.money(z.fee)}, {"zone_id": z.id})
            for z in view.catalog.zones
        ]

    def cache_key(self, view: View[ShopContext]) -> tuple[Any, ...]:
        return ()


ADDRESS_MIN, ADDRESS_MAX = 3, 60


class AddressPrompt(ShopScreen):
    state = "address"
    title = "address.prompt"
    titles = ("address.saved",)
    elastic = "address"
    prompt = Prompt("set_address")
    reasons = ("error.address",)

    def _saved(self, view: View[ShopContext]) -> str:
        """The last order's address, offered only for the district it was in."""
        ctx = view.ctx
        return ctx.saved_address if ctx.saved_zone == ctx.zone else ""

    def title_key(self, view: View[ShopContext]) -> str:
        return "address.saved" if self._saved(view) else self.title

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        return {"address": self._saved(view)}

    def parse(self, view: View[ShopContext], text: str) -> Outcome:
        saved = self._saved(view)
        if saved and text == "1":
            return Go("set_address", {"address": saved})
        address = " ".join(text.split())
        if not ADDRESS_MIN <= len(address) <= ADDRESS_MAX or not _is_plain_text(address):
            return Invalid("error.address")
        return Go("set_address", {"address": address})

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        return [{}, {"saved_zone": -1}]


# The widest line an address is wrapped to, by encoding: a wrapped line shares a page with the
# Confirm screen's choices at the default budgets (160/80) and well below them; on a budget too
# small even for that, the line is shortened as any list's row is.
WRAP = {"gsm7": 40, "ucs2": 20}


def _wrap(text: str) -> list[str]:
    """``text`` in lines of at most ``WRAP`` units, broken between words where it can be."""
    width = WRAP[measure(text).encoding]
    lines: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > width:  # a word longer than a line: broken where the line ends
            room = width - len(line) - (1 if line else 0)
            if room <= 0:
                lines.append(line)
                line, room = "", width
            line = f"{line} {word[:room]}".strip()
            word = word[room:]
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines


def _is_plain_text(text: str) -> bool:
    """Printable, and nothing the edge had to replace (U+FFFD stands for a byte that was not
    text): an address is read by a courier and kept by the store."""
    return text.isprintable() and "\ufffd" not in text


class PaymentChoice(ShopScreen):
    state = "payment"
    title = "payment.title"
    # The subscriber's shop cards first (none: cash on delivery is 1, as it always was).
    rows = Rows("payment.card", event="pick_card", do="choose_card")
    skip_one = True  # no card, one way to pay: nothing to ask
    options = (Option("payment.cod", "pick_payment", args={"method": "cod"}),)
    reasons = ("error.choice", "card.short", "card.gone")

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        # A refused card's balance goes into the reason: room is kept for the largest.
        return {"balance": view.t.money(max((c.balance for c in _cards(view)), default=0))}

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        t = view.t
        return [
            Row({"card": _digits(c), "balance": t.money(c.balance)}, {"card": c.id})
            for c in _cards(view)
        ]

    def choose_card(self, view: View[ShopContext], card: int) -> Outcome:
        found = _card(view, card)
        if found is None:
            return Invalid("card.gone")
        if found.balance < _total(view):
            return Invalid("card.short", {"balance": view.t.money(found.balance)})
        return Go("pick_card", {"card": card})


class ConfirmPage(ShopScreen):
    """What is confirmed, whole: the sums, the payment, the district and the address, as read
    lines paged like a list (an address is never cut), the choices on every page."""

    state = "confirm"
    title = "confirm.title"
    rows = Rows("confirm.line", elastic="text", fit=1)
    options = (
        Option("confirm.confirm", "place", do="confirm", also=("wait", "ran_out")),
        Option("confirm.cancel", "cancel_checkout"),
    )
    reasons = ("error.choice", "error.empty_cart")

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        # The sums are read as lines (the title and the choices take no values).
        t = view.t
        zone = _zone(view)
        fee = zone.fee if zone else 0
        subtotal = _subtotal(view)
        values = {
            "subtotal": t.money(subtotal),
            "fee": t.money(fee),
            "total": t.money(subtotal + fee),
            "zone": _name(view, zone) if zone else "",
            "address": view.ctx.address,
            "payment": t(f"payment.{view.ctx.payment}"),
        }
        lines = t("confirm.body", **values).split("\n")
        where = t("confirm.where", zone=values["zone"], address=values["address"])
        return [Row({"text": line}) for line in [*lines, *_wrap(where)]]

    def confirm(self, view: View[ShopContext]) -> Outcome:
        ctx = view.ctx
        lines = tuple(OrderLineRequest(pid, qty) for pid, qty in ctx.cart)
        zone = _zone(view)
        if not lines:
            return Invalid("error.empty_cart")
        if zone is None or not ctx.address:
            return Invalid()
        result = view.fetch(
            PlaceOrder(
                idempotency_key=_order_key(view),
                msisdn=view.msisdn,
                lang=view.lang,
                lines=lines,
                zone_id=zone.id,
                address=ctx.address,
                payment=ctx.payment,
            )
        )
        if isinstance(result, OutOfStock):
            ctx.note = view.t("error.ran_out")
            return Go("ran_out", {"product_ids": list(result.product_ids)})
        if isinstance(result, OrderPending):
            return Go("wait")
        return Go("place", {"code": result.code, "total": result.total})


class Placed(ShopScreen):
    state = "placed"
    title = "placed.body"
    titles = ("placed.card",)
    end = True
    reasons = ()

    def title_key(self, view: View[ShopContext]) -> str:
        return "placed.card" if len(view.ctx.placed) > 2 else self.title

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        code, total, card = [*(view.ctx.placed or ["", 0]), ""][:3]
        return {"code": code, "total": view.t.money(total), "card": card}

    def samples(self, view: View[ShopContext]) -> Sequence[Mapping[str, Any]]:
        return [{}, {"placed": ["WWWWWW", 99_999_999, "9999"]}]


class Pending(ShopScreen):
    state = "pending"
    title = "placed.pending"
    end = True
    reasons = ()


def _orders(view: View[ShopContext]) -> tuple[OrderSummary, ...]:
    orders: tuple[OrderSummary, ...] = view.fetch(ListOrders(view.msisdn))
    return orders


class OrderList(ShopScreen):
    state = "orders"
    title = "orders.title"
    titles = ("orders.empty",)
    rows = Rows("orders.line", event="pick_order")

    def title_key(self, view: View[ShopContext]) -> str:
        return self.title if _orders(view) else "orders.empty"

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        t = view.t
        return [
            Row({"code": o.code, "status": t(f"status.{o.status}")}, {"code": o.code})
            for o in _orders(view)
        ]


def _order(view: View[ShopContext]) -> OrderDetail | None:
    detail: OrderDetail | None = view.fetch(GetOrder(view.msisdn, view.ctx.order))
    return detail


class OrderPage(ShopScreen):
    state = "order_detail"
    title = "order.body"
    titles = ("orders.empty",)
    rows = Rows("order.line", elastic="name")
    options = (Option("order.cancel", "start_cancelling", when="cancellable"),)
    reasons = ("error.choice", "order.cancelled", "order.not_cancelled")

    def title_key(self, view: View[ShopContext]) -> str:
        return self.title if _order(view) is not None else "orders.empty"

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        detail = _order(view)
        if detail is None:
            return {"code": view.ctx.order}
        t = view.t
        return {
            "code": detail.code,
            "status": t(f"status.{detail.status}"),
            "date": detail.created_at.strftime("%m-%d"),
            "total": t.money(detail.total),
        }

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        detail = _order(view)
        lines = detail.lines if detail is not None else ()
        return [Row({"quantity": line.quantity, "name": _name(view, line)}) for line in lines]

    def cancellable(self, view: View[ShopContext]) -> bool:
        detail = _order(view)
        return detail is not None and detail.status in CUSTOMER_CANCELLABLE


class CancelPrompt(ShopScreen):
    state = "cancel_order"
    title = "order.cancel_confirm"
    options = (
        Option("order.cancel_yes", "cancelled", do="cancel"),
        Option("order.cancel_no", "keep_order"),
    )

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        return {"code": view.ctx.order}

    def cancel(self, view: View[ShopContext]) -> Outcome:
        code = view.ctx.order
        done = view.fetch(CancelOrder(view.msisdn, code))
        view.ctx.note = view.t("order.cancelled" if done else "order.not_cancelled", code=code)
        return Go("cancelled")


class LanguageList(ShopScreen):
    state = "language"
    title = "language.title"
    rows = Rows("language.line", event="set_language", do="choose")

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        return [Row({"name": texts(lang)("language.name")}, {"lang": lang}) for lang in LANGS]

    def choose(self, view: View[ShopContext], lang: Lang) -> Outcome:
        view.fetch(SaveLanguage(view.msisdn, lang))
        view.ctx.note = texts(lang)("language.changed")
        return Go("set_language", {"lang": lang})


class HelpPage(ShopScreen):
    state = "help"
    title = "help.title"
    rows = Rows("help.line")  # read, not chosen: paged like any list
    topics = ("help.order", "help.pay", "help.paging", "help.sms")

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        return [Row({"text": view.t(key)}) for key in self.topics]

    def cache_key(self, view: View[ShopContext]) -> tuple[Any, ...]:
        return ()


# --- shop cards (issue 13) -------------------------------------------------------------------
# A PIN is read by the screen's parse and handed to the store inside a request: never kept in
# the context. ``secret`` screens have their input masked before the gateway keeps the path.


def _cards(view: View[ShopContext]) -> tuple[CardView, ...]:
    found: tuple[CardView, ...] = view.fetch(ListCards(view.msisdn))
    return found


def _card(view: View[ShopContext], card: int | None = None) -> CardView | None:
    wanted = view.ctx.card if card is None else card
    return next((c for c in _cards(view) if c.id == wanted), None)


def _digits(card: CardView) -> str:
    return card.number[-4:]


def _total(view: View[ShopContext]) -> int:
    zone = _zone(view)
    return _subtotal(view) + (zone.fee if zone else 0)


def is_pin(text: str) -> bool:
    """4 to 6 ASCII digits."""
    return is_digits(text) and 4 <= len(text) <= 6


_PIN_REASONS = ("card.pin_format", "card.pin_wrong", "card.locked", "card.gone")
# The reasons' values at their widest, for ``okryu flow check`` (a lock lasts at most a day).
_PIN_WORST = {"left": 2, "minutes": 1440}


def _check_pin(view: View[ShopContext], card: CardView | None, text: str) -> Invalid | None:
    """None when ``text`` is the card's PIN; else why not (a wrong one counts)."""
    if card is None:
        return Invalid("card.gone")
    if not is_pin(text):
        return Invalid("card.pin_format")  # not a PIN at all: no try used
    checked = view.fetch(CheckPin(view.msisdn, card.id, text, view.lang))
    if checked.ok:
        return None
    if checked.locked:
        return Invalid("card.locked", {"minutes": checked.minutes})
    if checked.left:
        return Invalid("card.pin_wrong", {"left": checked.left})
    return Invalid("card.gone")


class CardPin(ShopScreen):
    """Paying by card: the PIN is the confirmation. The order and its payment are one
    transaction; a replayed or raced PIN hop places (and pays) once, on the checkout's key."""

    state = "card_pin"
    title = "card.pin"
    secret = True
    prompt = Prompt("place", also=("wait", "ran_out"))
    reasons = (*_PIN_REASONS, "card.short", "error.empty_cart")

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        card = _card(view)
        t = view.t
        return {"total": t.money(_total(view)), "card": _digits(card) if card else "",
                "balance": t.money(card.balance if card else 0), **_PIN_WORST}  # fmt: skip

    def parse(self, view: View[ShopContext], text: str) -> Outcome:
        ctx = view.ctx
        lines = tuple(OrderLineRequest(pid, qty) for pid, qty in ctx.cart)
        zone = _zone(view)
        if not lines:
            return Invalid("error.empty_cart")
        if zone is None or not ctx.address:
            return Invalid()
        card = _card(view)
        refused = _check_pin(view, card, text)
        if refused is not None or card is None:
            return refused or Invalid("card.gone")
        result = view.fetch(
            PlaceOrder(
                idempotency_key=_order_key(view), msisdn=view.msisdn, lang=view.lang,
                lines=lines, zone_id=zone.id, address=ctx.address, payment="card", card=card.id,
            )
        )  # fmt: skip
        if isinstance(result, CardDeclined):
            return Invalid("card.short", {"balance": view.t.money(result.balance)})
        if isinstance(result, OutOfStock):
            ctx.note = view.t("error.ran_out")
            return Go("ran_out", {"product_ids": list(result.product_ids)})
        if isinstance(result, OrderPending):
            return Go("wait")
        assert isinstance(result, OrderPlaced)
        return Go("place", {"code": result.code, "total": result.total, "card": _digits(card)})


class MyCards(ShopScreen):
    state = "my_card"
    title = "card.title"
    titles = ("card.empty",)
    rows = Rows("card.line", event="start_pin_change")

    def title_key(self, view: View[ShopContext]) -> str:
        return self.title if _cards(view) else "card.empty"

    def items(self, view: View[ShopContext]) -> Sequence[Row]:
        t = view.t
        return [
            Row(
                {
                    "card": _digits(c),
                    "balance": t.money(c.balance),
                    "lock": t("card.lock_mark") if c.locked else "",
                },
                {"card": c.id},
            )  # fmt: skip
            for c in _cards(view)
        ]


class OldPin(ShopScreen):
    state = "pin_old"
    title = "card.old_pin"
    secret = True
    prompt = Prompt("pin_checked")
    reasons = _PIN_REASONS

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        card = _card(view)
        return {"card": _digits(card) if card else "", **_PIN_WORST}

    def parse(self, view: View[ShopContext], text: str) -> Outcome:
        card = _card(view)
        refused = _check_pin(view, card, text)
        if refused is not None or card is None:
            return refused or Invalid("card.gone")
        return Go("pin_checked", {"card": card.id})


class NewPin(ShopScreen):
    state = "pin_new"
    title = "card.new_pin"
    secret = True
    prompt = Prompt("pin_changed")
    reasons = ("card.pin_format", "card.gone")

    def values(self, view: View[ShopContext]) -> Mapping[str, Any]:
        card = _card(view)
        return {"card": _digits(card) if card else ""}

    def parse(self, view: View[ShopContext], text: str) -> Outcome:
        card = _card(view)
        if card is None or view.ctx.pin_ok != card.id:
            return Invalid("card.gone")
        if not is_pin(text):
            return Invalid("card.pin_format")
        if not view.fetch(ChangePin(view.msisdn, card.id, text)):
            return Invalid("card.gone")
        view.ctx.note = view.t("card.changed")
        return Go("pin_changed")


# --- the journey ------------------------------------------------------------------------------


class Shop(Journey[ShopContext]):
    """The shop journey, as the engine sees it."""

    chart = ShopChart
    context = ShopContext
    screen_base = ShopScreen
    home = "home"
    funnel = ("home", "categories", "products", "product", "quantity", "cart", "zone",
              "address", "payment", "confirm", "placed")  # fmt: skip
    # A renamed state: {"old name": "new name"}.
    moved: ClassVar[Mapping[str, str]] = {"remove_item": "change_item"}

    def begin(self, view: View[ShopContext]) -> None:
        """A new session: know the subscriber (language, saved address) before home."""
        ctx = view.ctx
        ctx.placed, ctx.note, ctx.zone, ctx.address = [], "", 0, ""
        ctx.payment, ctx.order, ctx.product = "cod", "", 0
        ctx.card, ctx.pin_ok = 0, 0
        if ctx.pending:
            ctx.pending = False
            # The last order outlasted its hop: if it went through, its cart is done with.
            if view.fetch(FindOrder(view.msisdn, _order_key(view))) is not None:
                ctx._cart_done()
        if ctx.known:
            return
        profile = view.fetch(LoadCustomer(view.msisdn))
        ctx.known = True
        if profile is None:
            ctx.lang = view.settings.default_language
            return
        ctx.lang = profile.lang
        ctx.saved_zone = profile.zone_id or 0
        ctx.saved_address = profile.address or ""

    def abandoned_cart(self, ctx: ShopContext) -> str | None:
        """What a cut session leaves behind that is worth a reminder: its cart's identity."""
        return ctx.abandoned_cart()

    def worst_case(self, catalog: Catalog) -> Mapping[str, Any]:
        products = list(catalog.products)
        zones = [z.id for z in catalog.zones]
        address = "Apt 12-345, Ryomyong Street, Central District, Pyongyang 99"[:ADDRESS_MAX]
        return {
            "cart": [[pid, 10] for pid in products[:15]],
            "cart_id": "check.0",
            "category": catalog.categories[0].id if catalog.categories else 0,
            "product": products[0] if products else 0,
            "zone": zones[-1] if zones else 0,
            "address": address,
            "saved_zone": zones[-1] if zones else 0,
            "saved_address": address,
            "placed": ["WWWWWW", 99_999_999],
            "order": "WWWWWW",
            "known": True,
            "card": 1,
        }

    def answers(self, catalog: Catalog, msisdn: str) -> dict[tuple[int, Any], Any]:
        products = list(catalog.products.values())[:12]
        lines = tuple(OrderLineView(p.name_en, p.name_ko, 10, p.price) for p in products)
        when = datetime(2026, 12, 31)
        statuses = ["placed", "confirmed", "dispatched", "delivered", "cancelled"] * 6
        summaries = tuple(
            OrderSummary(f"ABC{n:03d}", status, 99_999_999, when)
            for n, status in enumerate(statuses)
        )
        detail = OrderDetail(
            "WWWWWW", "placed", lines, 9_999_999, 99_999, 10_099_998, "x", "y", "z" * 60, when
        )
        cards = tuple(CardView(n, f"99999999999{n}", 99_999_999, n == 3) for n in (1, 2, 3, 4))
        return {
            (0, ListOrders(msisdn)): summaries,
            (0, GetOrder(msisdn, "WWWWWW")): detail,
            (0, ListCards(msisdn)): cards,
        }
