"""The engine and the shop journey: transitions, navigation, re-prompts, requests."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from menus.engine import Engine
from menus.ports import (
    CancelOrder,
    CustomerProfile,
    FindOrder,
    LoadCustomer,
    PlaceOrder,
    SaveLanguage,
)
from menus.screens import Budget, fits
from tests.menus.helpers import MSISDN, Driver, FakeStore


def test_engine_first_dial_asks_for_the_customer_then_shows_home() -> None:
    phone = Driver()
    screen = phone.dial()
    assert phone.store.asked == [LoadCustomer(MSISDN)]
    assert (
        screen == "Okryu Shop\n1. Shop\n2. Cart (0)\n3. My orders\n4. Language\n5. Help\n6. My card"
    )
    assert phone.state == "home"


def test_engine_known_customer_is_greeted_in_their_language() -> None:
    phone = Driver(store=FakeStore(profile=CustomerProfile(MSISDN, "ko", 2, "창전거리 5")))
    assert phone.dial().startswith("옥류상점\n1.상품보기\n2.바구니(0)")
    phone.send("1", "1", "1", "1", "1", "1", "2")  # to the address of district 2
    assert phone.turn is not None and "1.창전거리 5" in phone.turn.text  # their saved address


def test_engine_second_dial_does_not_ask_the_store_again() -> None:
    phone = Driver()
    phone.dial()
    phone.dial(ref="s2")
    assert phone.store.asked == [LoadCustomer(MSISDN)]


def test_engine_browse_to_a_product() -> None:
    phone = Driver()
    phone.dial()
    assert phone.send("1") == ("Categories\n1. Food\n2. Medicine\n0 Back 00 Home")
    screen = phone.send("1")
    assert screen.startswith("Food\n1. Product number 1 KPW 1,000\n")
    assert "98 More" in screen
    assert phone.state == "products"
    screen = phone.send("2")
    assert phone.state == "product"
    assert screen.startswith("Product number 2\nKPW 2,000\nA fine thing")
    assert screen.endswith("1. Add to cart\n0 Back 00 Home")


def test_engine_more_pages_through_a_list_and_back_returns_to_the_page() -> None:
    phone = Driver()
    phone.dial()
    phone.send("1")
    first = phone.send("1")
    second = phone.send("98")
    assert second != first and second.startswith("Food\n1. Product number")
    shown_first = [line for line in first.splitlines() if "Product number" in line]
    number = int(second.splitlines()[1].split("Product number ")[1].split()[0])
    assert number == len(shown_first) + 1  # the next page starts where the first ended
    opened = phone.send("1")  # open the first product of page two
    assert opened.startswith(f"Product number {number}\n")
    assert phone.send("0") == second  # back lands on page two, not page one


def test_engine_more_on_the_last_page_is_refused() -> None:
    phone = Driver()
    phone.dial()
    phone.send("1")
    screen = phone.send("98")
    assert screen.startswith("There is no next page.\nCategories\n")


def test_engine_invalid_choice_reprompts_the_same_screen_with_a_reason() -> None:
    phone = Driver()
    phone.dial()
    categories = phone.send("1")
    for bad in ("7", "x", "", "1a", "-1"):
        assert phone.send(bad) == "Invalid choice. Try again.\n" + categories
        assert phone.state == "categories"


def test_engine_home_and_back_from_anywhere() -> None:
    phone = Driver()
    phone.dial()
    phone.send("1", "1", "1")
    assert phone.state == "product"
    phone.send("0")
    assert phone.state == "products"
    phone.send("0")
    assert phone.state == "categories"
    phone.send("1", "2", "00")
    assert phone.state == "home"
    phone.send("1", "1")
    assert phone.send("0", "0", "0") == phone.send("00")  # back from the top goes home


def test_engine_sold_out_product_cannot_be_added() -> None:
    phone = Driver()
    phone.dial()
    phone.send("1", "1")
    listing = phone.send("98")
    line = next(row for row in listing.splitlines() if "Product number 5" in row)
    assert line.endswith("Product number 5 sold out")
    screen = phone.send(line.split(".")[0])
    assert screen.endswith("Sold out\n0 Back 00 Home")
    assert "Add to cart" not in screen
    assert phone.send("1") == "Invalid choice. Try again.\n" + screen
    assert phone.state == "product"


def test_engine_lists_stock_as_read_at_each_reading_of_the_same_catalog_version() -> None:
    """Stock is read again under the same catalog version (every order moves it): a product
    list shown from one reading is not shown again from the next."""
    phone = Driver()
    phone.dial()
    assert "Product number 2 KPW 2,000" in phone.send("1", "1")
    products = {**phone.catalog.products}
    products[2] = dataclasses.replace(products[2], stock=0)
    phone.catalog = dataclasses.replace(phone.catalog, products=products, reading=2)
    assert "Product number 2 sold out" in phone.send("0", "1")
    products[2] = dataclasses.replace(products[2], stock=9)  # restocked
    phone.catalog = dataclasses.replace(phone.catalog, products=dict(products), reading=3)
    assert "Product number 2 KPW 2,000" in phone.send("0", "1")


def test_engine_shows_each_shopper_the_product_page_their_cart_allows() -> None:
    """The product page and the quantity prompt are built once for all shoppers (cached):
    still, a cart that holds all there is sees no "Add to cart", and the prompt's range is
    what each cart has room for."""
    full, empty = Driver(), Driver(ref="s2")
    empty.engine = full.engine  # one process, one cache
    full.dial()
    empty.dial()
    assert "How many? (1-3)" in full.send("1", "1", "2", "1")
    full.send("3", "00")  # all three in the cart
    page = full.send("1", "1", "2")
    assert "Add to cart" not in page and page.endswith("Sold out\n0 Back 00 Home")
    assert "1. Add to cart" in empty.send("1", "1", "2")
    assert "How many? (1-3)" in empty.send("1")
    empty.send("1", "00")
    assert "How many? (1-2)" in empty.send("1", "1", "2", "1")


def _to_quantity(phone: Driver) -> str:
    phone.dial()
    return phone.send("1", "1", "1", "1")


def test_engine_quantity_is_validated_against_stock_and_cap() -> None:
    phone = Driver()
    prompt = _to_quantity(phone)
    assert prompt == "Product number 1\nKPW 1,000 each\nHow many? (1-3)\n0 Back 00 Home"
    for bad in ("0x", "4", "abc", "1.5"):
        assert phone.send(bad) == "Enter a number from 1 to 3.\n" + prompt
        assert phone.state == "quantity"


def test_engine_adding_to_cart_shows_the_cart_and_back_goes_home() -> None:
    phone = Driver()
    _to_quantity(phone)
    cart = phone.send("2")
    assert cart == (
        "Cart (1): KPW 2,000\n2 x Product number 1\n1. Checkout\n2. Change an item\n"
        "3. Shop more\n0 Back 00 Home"
    )
    assert phone.send("0").startswith("Okryu Shop\n1. Shop\n2. Cart (1)")  # the chart's back


def test_engine_adding_the_same_product_twice_adds_up_within_stock() -> None:
    phone = Driver()
    _to_quantity(phone)
    phone.send("2", "3", "1", "1", "1")  # shop more: the same product again
    assert phone.send().startswith("Product number 1\nKPW 1,000 each\nHow many? (1-1)")
    assert phone.send("1").startswith("Cart (1): KPW 3,000\n3 x Product number 1\n")
    phone.send("3", "1", "1")  # product 1 again: nothing left to add
    assert phone.send().endswith("Sold out\n0 Back 00 Home")


def test_engine_remove_an_item_says_so_then_back_goes_past_the_change_screens() -> None:
    phone = Driver()
    _to_quantity(phone)
    phone.send("1", "3", "1", "2", "1", "1")  # 1 of product 1, then 1 of product 2
    assert phone.send("2") == (
        "Change which item?\n1. 1 x Product number 1\n2. 1 x Product number 2\n0 Back 00 Home"
    )
    assert phone.send("1") == (
        "Product number 1\n1 in cart\n1. Remove it\n2. Change quantity\n0 Back 00 Home"
    )
    assert phone.send("1").startswith("Item removed.\nCart (1): KPW 2,000\n1 x Product number 2\n")
    phone.send("0")
    assert phone.state == "home"  # back from the cart, never to the change screens


def test_engine_change_a_lines_quantity_within_stock() -> None:
    phone = Driver()
    _to_quantity(phone)
    phone.send("1")  # 1 of product 1 (stock 3)
    phone.send("2", "1", "2")
    prompt = "Product number 1\n1 in cart\nHow many now? (1-3)\n0 Back 00 Home"
    assert phone.send() == prompt
    for bad in ("0", "4", "x", "²"):
        screen = phone.send(bad)
        if bad == "0":  # 0 is back, as on every screen
            assert phone.state == "line"
            phone.send("2")
            continue
        assert screen == "Enter a number from 1 to 3.\n" + prompt
    assert phone.send("3").startswith(
        "Quantity changed.\nCart (1): KPW 3,000\n3 x Product number 1\n"
    )
    assert phone.ctx["cart"] == [[1, 3]]


def test_engine_cart_shows_several_lines_a_screen_names_shortened_by_the_budget() -> None:
    from store.catalog import widest_catalog
    from store.seed import demo_catalog

    for catalog, budget in ((demo_catalog(), Budget(160, 80)), (widest_catalog(), Budget(160, 80))):
        for lang in ("en", "ko"):
            phone = Driver(catalog, budget=budget)
            phone.dial()
            if lang == "ko":
                phone.send("4", "2")
            first = catalog.by_category[catalog.categories[0].id]
            phone.ctx["cart"] = [[pid, 10] for pid in first[:3]]
            cart = phone.send("2")
            assert fits(cart, budget), cart
            lines = [line for line in cart.splitlines() if "10 x " in line or "10x" in line]
            if catalog.version != "widest":
                assert len(lines) == 3, cart  # three products, one screen
            else:  # names that fill their columns: cut, and still at least one a screen
                assert lines and all(line.endswith(("...", "…")) for line in lines), cart
            # never an option cut: all three choices and the way back are whole
            options = (
                ["1. Checkout", "2. Change an item", "3. Shop more"]
                if lang == "en"
                else ["1.주문하기", "2.수량 바꾸기", "3.더 고르기"]
            )
            assert all(option in cart.splitlines() for option in options), cart
            assert cart.endswith(("0 Back 00 Home", "0 뒤로 00 처음"))


def test_engine_empty_cart_offers_to_shop() -> None:
    phone = Driver()
    phone.dial()
    assert phone.send("2") == "Your cart is empty.\n1. Shop\n0 Back 00 Home"
    phone.send("1")
    assert phone.state == "categories"


def _checkout(phone: Driver, address: str = "Changjon street 5") -> str:
    _to_quantity(phone)
    phone.send("2", "1", "1")  # cart -> checkout -> first district
    return phone.send(address)  # cash on delivery, the one way to pay, is chosen for them


def test_engine_address_is_validated() -> None:
    phone = Driver()
    _to_quantity(phone)
    prompt = phone.send("2", "1", "1")
    assert phone.state == "address"
    for bad in ("ab", "x" * 61, "   "):
        assert phone.send(bad) == "Type 3 to 60 characters.\n" + prompt
    confirm = phone.send("  Changjon   street 5 ")
    assert "District 1, Changjon street 5" in confirm  # spaces tidied on Confirm


def test_engine_confirm_shows_total_fee_and_address() -> None:
    phone = Driver()
    screen = _checkout(phone)
    assert screen == (
        "Please confirm\nTotal KPW 2,500 (delivery KPW 500)\nCash on delivery\n"
        "District 1, Changjon street 5\n1. Confirm\n2. Back to cart\n0 Back 00 Home"
    )


def _confirm_pages(phone: Driver, first: str) -> list[str]:
    pages = [first]
    while "98 " in pages[-1]:
        pages.append(phone.send("98"))
    return pages


def test_engine_confirm_shows_the_whole_longest_address_paged_in_either_language() -> None:
    english = "Apt 12-345, Ryomyong Street, Central District, Pyongyang 99"  # 60, the most
    korean = "평양시 중구역 창전거리 5번지 12층 345호, 려명거리 옆 큰 건물, 옥류관 건너편"[:60]
    for lang, address in (("en", english), ("ko", korean)):
        phone = Driver()
        phone.dial()
        if lang == "ko":
            phone.send("4", "2")
        phone.send("1", "1", "1", "1", "2", "1", "1")
        pages = _confirm_pages(phone, phone.send(address))
        chrome = {"1. Confirm", "2. Back to cart", "98 More", "0 Back 00 Home", "1.확인",
                  "2.바구니로", "98 다음", "0 뒤로 00 처음"}  # fmt: skip
        shown = " ".join(
            line for page in pages for line in page.splitlines()[1:] if line not in chrome
        )
        assert " ".join(address.split()) in " ".join(shown.split()), pages  # every word, uncut
        assert "..." not in shown and "…" not in shown
        for page in pages:  # the choices on every page, each screen within the budget
            assert fits(page, Budget())
            assert ("1. Confirm" if lang == "en" else "1.확인") in page.splitlines()
        assert phone.send("1").startswith(("Order ", "주문 "))  # confirmable from the last page


def test_engine_saved_address_of_a_profile_is_offered_only_for_its_district() -> None:
    profile = CustomerProfile(MSISDN, "en", 2, "Changjon street 5")
    phone = Driver(store=FakeStore(profile=profile))
    phone.dial()
    phone.send("1", "1", "1", "1", "1", "1")  # to the districts
    assert phone.send("1") == "Delivery address?\nType 3 to 60 characters.\n0 Back 00 Home"
    phone.send("0")
    assert "1. Changjon street 5" in phone.send("2")  # district 2: the one it was for


def test_engine_confirm_places_the_order_and_ends_with_the_code() -> None:
    phone = Driver()
    _checkout(phone)
    screen = phone.send("1")
    request = phone.store.asked[-1]
    assert isinstance(request, PlaceOrder)
    assert request.lines[0].product_id == 1 and request.lines[0].quantity == 2
    assert request.idempotency_key == f"{MSISDN}:s1.0"
    assert phone.turn is not None and phone.turn.end
    code = next(iter(phone.store.orders))
    assert screen.startswith(f"Order {code} placed.\nTotal KPW 2,500")
    assert request.address == "Changjon street 5"
    assert phone.dial(ref="s2").startswith("Okryu Shop\n1. Shop\n2. Cart (0)")


def test_engine_next_order_offers_the_saved_address_and_a_new_key() -> None:
    phone = Driver()
    _checkout(phone)
    phone.send("1")
    phone.dial(ref="s2")
    phone.send("1", "1", "2", "1", "1", "1", "1")
    assert phone.state == "address"
    assert phone.turn is not None
    assert phone.turn.text.startswith("Delivery address?\n1. Changjon street 5\n")
    phone.send("1", "1")
    phone.send("1")
    orders = [r for r in phone.store.asked if isinstance(r, PlaceOrder)]
    assert [r.idempotency_key for r in orders] == [f"{MSISDN}:s1.0", f"{MSISDN}:s2.1"]
    assert orders[1].address == "Changjon street 5"


def test_engine_saved_address_is_offered_only_for_its_district() -> None:
    phone = Driver()
    _checkout(phone)  # district 1
    phone.send("1")
    phone.dial(ref="s2")
    screen = phone.send("1", "1", "2", "1", "1", "1", "2")  # district 2 this time
    assert screen == "Delivery address?\nType 3 to 60 characters.\n0 Back 00 Home"


def test_engine_out_of_stock_at_confirm_returns_to_the_cart_with_a_reason() -> None:
    phone = Driver(store=FakeStore(out_of_stock=(1,)))
    _checkout(phone)
    screen = phone.send("1")
    assert phone.state == "cart"
    assert (
        screen == "Some items ran out; cart updated.\nYour cart is empty.\n1. Shop\n0 Back 00 Home"
    )


def test_engine_my_orders_lists_newest_first_and_opens_detail() -> None:
    phone = Driver()
    _checkout(phone)
    phone.send("1")
    first = next(iter(phone.store.orders))
    phone.dial(ref="s2")
    assert phone.send("3") == f"My orders\n1. {first} Placed\n0 Back 00 Home"
    detail = phone.send("1")
    assert (
        detail
        == f"Order {first}\nPlaced 11-28\nTotal KPW 2,500\n2 x Product number 1\n1. Cancel order\n0 Back 00 Home"
    )


def test_engine_language_switch_saves_and_speaks_korean() -> None:
    phone = Driver()
    phone.dial()
    assert phone.send("4") == "Language\n1. English\n2. 조선말\n0 Back 00 Home"
    screen = phone.send("2")
    assert SaveLanguage(MSISDN, "ko") in phone.store.asked
    assert (
        screen
        == "언어: 조선말\n옥류상점\n1.상품보기\n2.바구니(0)\n3.나의 주문\n4.언어\n5.도움말\n6.나의 카드"
    )
    assert phone.send("1").startswith("상품부류")  # and on in Korean


def test_engine_shortcut_inputs_in_one_hop_reach_the_same_screen() -> None:
    one_by_one = Driver()
    one_by_one.dial()
    expected = one_by_one.send("1", "2")
    shortcut = Driver()
    assert shortcut.dial("1", "2") == expected
    assert shortcut.state == "products"


def test_engine_help_is_a_screen_with_a_way_back() -> None:
    phone = Driver()
    phone.dial()
    screen = phone.send("5")
    assert screen.startswith("Help\nPick goods")
    assert screen.endswith("98 More\n0 Back 00 Home")
    phone.send("0")
    assert phone.state == "home"


def _help_pages(phone: Driver, choose_help: str) -> str:
    pages = [phone.send(choose_help)]
    while "98 " in pages[-1].splitlines()[-2]:
        pages.append(phone.send("98"))
    return "\n".join(pages)


def test_engine_help_tells_paging_and_every_sms_command_in_english() -> None:
    phone = Driver()
    phone.dial()
    shown = _help_pages(phone, "5")
    assert "98 next page, 0 page back (or out), 00 home" in shown
    for command in ("STATUS code", "CANCEL code", "ORDERS", "LANG EN or KO", "STOP", "HELP"):
        assert command in shown


def test_engine_help_tells_paging_and_every_sms_command_in_korean() -> None:
    phone = Driver()
    phone.dial()
    phone.send("4", "2")  # 조선말
    shown = _help_pages(phone, "5")
    assert "98 다음 페지, 0 앞 페지" in shown
    for command in ("상태 주문번호", "취소 주문번호", "주문", "언어 EN/KO", "중지", "도움"):
        assert command in shown


def test_engine_back_on_a_later_page_steps_back_a_page_then_leaves() -> None:
    phone = Driver()
    phone.dial()
    phone.send("1")
    first = phone.send("1")
    second = phone.send("98")
    third = phone.send("98")
    assert len({first, second, third}) == 3
    assert (phone.send("0"), phone.state) == (second, "products")
    assert (phone.send("0"), phone.state) == (first, "products")
    assert phone.send("0").startswith("Categories\n")  # from the first page, 0 leaves


def test_engine_resume_offers_to_continue_and_yes_lands_on_the_same_screen() -> None:
    phone = Driver()
    _to_quantity(phone)
    cart = phone.send("2")
    page_two = phone.send("3", "1", "98")  # the product list, second page
    assert (
        phone.dial(ref="s2", resume=True) == "Continue where you left off?\n1. Yes\n2. Start again"
    )
    assert phone.send("1") == page_two
    phone.send("00", "2")
    assert phone.turn is not None and phone.turn.text == cart


def test_engine_resume_start_again_goes_home_and_keeps_the_cart() -> None:
    phone = Driver()
    _to_quantity(phone)
    phone.send("2", "1")  # at the district list
    phone.dial(ref="s2", resume=True)
    assert phone.send("2").startswith("Okryu Shop\n1. Shop\n2. Cart (1)")
    assert phone.send("0").startswith("Invalid choice. Try again.\nOkryu Shop")  # no back


def test_engine_resume_reprompts_on_anything_else() -> None:
    phone = Driver()
    phone.dial()
    phone.send("1")
    prompt = phone.dial(ref="s2", resume=True)
    assert phone.send("7") == "Invalid choice. Try again.\n" + prompt


def test_engine_no_resume_from_home_from_an_end_screen_or_with_a_shortcut() -> None:
    phone = Driver()
    phone.dial()
    assert phone.dial(ref="s2", resume=True).startswith("Okryu Shop")
    _checkout(phone)
    phone.send("1")  # placed: an END screen
    assert phone.dial(ref="s3", resume=True).startswith("Okryu Shop")
    phone.send("1", "1")
    assert phone.dial("1", ref="s4", resume=True).startswith("Categories")


def test_engine_shortcut_that_turns_invalid_stops_on_the_last_valid_screen() -> None:
    phone = Driver()
    screen = phone.dial("1", "9", "1")
    assert phone.state == "categories"
    assert screen == "Invalid choice. Try again.\nCategories\n1. Food\n2. Medicine\n0 Back 00 Home"


def test_engine_slow_order_is_pending_and_the_next_session_clears_a_placed_cart() -> None:
    store = FakeStore(slow=True)
    phone = Driver(store=store)
    _checkout(phone)
    assert phone.send("1") == "Your order is being placed.\nAn SMS will confirm it shortly."
    assert phone.turn is not None and phone.turn.end
    key = next(r.idempotency_key for r in store.asked if isinstance(r, PlaceOrder))
    store.slow = False
    store.answer(next(r for r in store.asked if isinstance(r, PlaceOrder)), phone.catalog)
    assert phone.dial(ref="s2", resume=True).startswith("Okryu Shop\n1. Shop\n2. Cart (0)")
    assert FindOrder(MSISDN, key) in store.asked


def test_engine_slow_order_not_placed_keeps_cart_and_key_for_the_retry() -> None:
    store = FakeStore(slow=True)
    phone = Driver(store=store)
    _checkout(phone)
    phone.send("1")
    first_key = next(r.idempotency_key for r in store.asked if isinstance(r, PlaceOrder))
    store.slow = False
    assert phone.dial(ref="s2", resume=True).startswith("Okryu Shop\n1. Shop\n2. Cart (1)")
    phone.send("2", "1", "1", "Changjon street 5", "1")
    keys = [r.idempotency_key for r in store.asked if isinstance(r, PlaceOrder)]
    assert keys[-1] == first_key  # the same checkout: placing it twice is impossible
    assert phone.turn is not None and phone.turn.text.startswith("Order ")


def test_engine_customer_cancels_an_order_after_confirming() -> None:
    phone = Driver()
    _checkout(phone)
    phone.send("1")
    code = next(iter(phone.store.orders))
    phone.dial(ref="s2")
    phone.send("3", "1")
    assert (
        phone.send("1")
        == f"Cancel order {code}?\n1. Yes, cancel it\n2. No, keep it\n0 Back 00 Home"
    )
    assert phone.send("2").startswith(f"Order {code}\nPlaced")  # kept
    phone.send("1")
    screen = phone.send("1")
    assert CancelOrder(MSISDN, code) in phone.store.asked
    assert screen == (
        f"Order cancelled.\nOrder {code}\nCancelled 11-28\nTotal KPW 2,500\n"
        "2 x Product number 1\n0 Back 00 Home"
    )
    assert phone.state == "order_detail"


def test_engine_cancel_refused_says_so() -> None:
    store = FakeStore(cancellable=False)
    phone = Driver(store=store)
    _checkout(phone)
    phone.send("1")
    phone.dial(ref="s2")
    phone.send("3", "1", "1")
    assert phone.send("1").startswith("This order can no longer be cancelled.\n")


def test_engine_reports_inputs_typed_on_a_secret_screen_and_never_keeps_them() -> None:
    from menus.ports import CardView

    store = FakeStore(cards=(CardView(7, "123456789012", 50_000),), pins={7: "4821"})
    phone = Driver(store=store)
    phone.dial()
    phone.send("1", "1", "1", "1", "2", "1", "1", "Changjon street 5")
    assert phone.send("1").startswith("Pay KPW 2,500 with card 9012")
    assert phone.turn is not None and phone.turn.secret == ()
    assert phone.send("0000").startswith("Wrong PIN. 2 tries left.")
    assert phone.turn.secret == (0,) and "0000" not in str(phone.turn.ctx)
    # A shortcut's inputs after the PIN screen: the PIN is marked, so is what was never read.
    phone.send("0")
    assert phone.send("1", "4821", "9", "9").startswith("Order ")
    assert phone.turn.secret == (1, 2, 3)
    assert "4821" not in str(phone.turn.ctx)


def test_engine_a_choice_of_one_is_made_without_a_screen_going_and_coming_back() -> None:
    phone = Driver()
    _to_quantity(phone)
    phone.send("2", "1", "1")
    confirm = phone.send("Changjon street 5")
    assert (phone.state, confirm.splitlines()[2]) == ("confirm", "Cash on delivery")
    assert phone.ctx.get("payment", "cod") == "cod"
    assert phone.send("0").startswith("Delivery address?")  # back passes it too
    assert phone.state == "address"
    phone.send("Changjon street 5")
    phone.send("1")
    placed = [r for r in phone.store.asked if isinstance(r, PlaceOrder)]
    assert [r.payment for r in placed] == ["cod"]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The states whose screens the engine builds from now on, in order."""
    states: list[str] = []
    build = Engine._build

    def counted(engine: Engine, screen: Any, *args: Any) -> Any:
        states.append(screen.state)
        return build(engine, screen, *args)

    monkeypatch.setattr(Engine, "_build", counted)
    return states


def test_engine_answering_a_text_screen_does_not_build_it(built: list[str]) -> None:
    # A typed answer needs only the screen's flags (no rows to page, no choice to number):
    # the address screen is built again only to show it once more, with a reason.
    phone = Driver()
    _to_quantity(phone)
    phone.send("2", "1", "1")
    built.clear()
    phone.send("Changjon street 5")
    assert phone.state == "confirm" and "address" not in built
    phone.send("0")  # back to the address
    built.clear()
    phone.send("ab")  # too short: the same screen, with the reason
    assert built == ["address"]


def test_engine_a_choice_is_read_without_building_the_screen_it_answers(
    built: list[str],
) -> None:
    # Where only the choices are numbered (Home, a product, the cart, Confirm), they are all
    # there is to read a number by: the screen answered is not built again. Nor is a choice
    # of one (the way to pay), which is counted. Paging still builds what it pages.
    phone = Driver()
    phone.dial()
    for answer, shown in (("1", "categories"), ("1", "products"), ("1", "product")):
        built.clear()
        phone.send(answer)
        assert phone.state == shown and built == [shown]
    built.clear()
    phone.send("1")  # Add to cart, on the product page
    assert (phone.state, built) == ("quantity", ["quantity"])
    phone.send("2", "1", "1")
    built.clear()
    phone.send("Changjon street 5")
    assert (phone.state, built) == ("confirm", ["confirm"])  # no payment screen built
    built.clear()
    assert phone.send("1").startswith("Order ")
    assert (phone.state, built) == ("placed", ["placed"])

    long = "Apt 12-345, Ryomyong Street, Central District, Pyongyang 99"
    phone = Driver()
    phone.dial()
    phone.send("1", "1", "1", "1", "2", "1", "1")
    first = phone.send(long)
    second = phone.send("98")
    assert second != first and phone.state == "confirm"
    built.clear()
    assert phone.send("0") == first  # back a page, not back to the address
    assert set(built) == {"confirm"} and phone.state == "confirm"  # paging builds it
    built.clear()
    assert phone.send("0").startswith("Delivery address?")  # on the first page: back a screen
    assert "confirm" not in built
