"""How a journey is declared: its context, its screens and what their options send.

A journey is three things, each declared once:

- a **chart** (a python-statemachine ``StateChart``): every state and every transition, home
  and back included. It is the one source of navigation: the engine runs a table derived from
  it, and ``okryu flow diagram`` draws it.
- a **context** (a dataclass derived from :class:`Context`): what a session remembers, as named
  fields. ``on_<event>(**args)`` methods on it say what an event does to it.
- one **screen** per state (a class derived from the journey's screen base, naming its
  ``state``): the text keys it shows, and the event each option, row or prompt sends.

Everything is checked when the engine is built and by ``okryu flow check`` (``menus.check``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from statemachine import StateChart

from menus.ports import (
    CancelOrder,
    Catalog,
    ChangePin,
    CheckPin,
    Lang,
    PlaceOrder,
    Request,
    SaveLanguage,
)
from menus.text import Texts, texts


class MenuError(Exception):
    """The menus' one exception root."""


class InvalidJourney(MenuError):
    """The journey's declaration contradicts itself; the message names each problem."""


# Requests that change the store. Whatever the step reads after one must be read afresh: an
# order shown after its cancellation, in the same hop, shows it cancelled.
CHANGES = (PlaceOrder, CancelOrder, SaveLanguage, CheckPin, ChangePin)
Answers = Mapping[tuple[int, Request], Any]  # (changes made before it, request) -> answer


class NeedData(MenuError):
    """The step needs the answer to ``request`` before it can go on; the caller files the
    answer under ``key`` and runs the step again."""

    def __init__(self, request: Request, key: tuple[int, Request]) -> None:
        super().__init__(request)
        self.request = request
        self.key = key


def is_digits(text: str) -> bool:
    """ASCII digits only: ``"²".isdigit()`` and ``"٣".isdigit()`` are true, yet no menu means
    them (and ``int("²")`` fails)."""
    return text.isascii() and text.isdigit()


# --- the context ------------------------------------------------------------------------------


@dataclass
class Context:
    """What every session holds for the engine; a journey's context adds its own fields.

    Stored as JSON between hops, fields left at their defaults omitted; a field the code no
    longer has is dropped and a new one takes its default, so a deploy never fails a session.
    """

    lang: Lang = "en"
    page: int = 0  # the page of the screen shown
    pages: dict[str, int] = field(default_factory=dict)  # pages of screens left forward
    note: str = ""  # one line shown above the next screen
    resume: str = ""  # while asking "continue where you left off?": where that is
    journey: str = ""  # the version of the journey this session started on

    # Fields renamed since a release, old name -> new: a context stored by that release
    # (one without ``journey``) is read under the new names.
    renamed: ClassVar[Mapping[str, str]] = {}

    def dump(self) -> dict[str, Any]:
        """The fields that differ from their defaults, as JSON-able data."""
        out: dict[str, Any] = {}
        for name, default in _defaults(type(self)):
            value = getattr(self, name)
            if value != default:
                out[name] = value
        return out

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Context:
        """The context ``dump`` wrote (or an older or newer one: unknown fields are dropped)."""
        if cls.renamed and "journey" not in data:
            data = {cls.renamed.get(name, name): value for name, value in data.items()}
        names = _names(cls)
        return cls(
            **{name: value for name, value in data.items() if name in names and value is not None}
        )

    def on_go_home(self) -> None:
        self.pages.clear()


_DEFAULTS: dict[type[Context], tuple[tuple[str, Any], ...]] = {}


def _defaults(cls: type[Context]) -> tuple[tuple[str, Any], ...]:
    found = _DEFAULTS.get(cls)
    if found is None:
        made = cls()
        found = _DEFAULTS[cls] = tuple(
            (f.name, getattr(made, f.name)) for f in dataclasses.fields(cls)
        )
    return found


_NAMES: dict[type[Context], frozenset[str]] = {}


def _names(cls: type[Context]) -> frozenset[str]:
    """The context's field names, gathered once per class (every hop loads a context)."""
    found = _NAMES.get(cls)
    if found is None:
        found = _NAMES[cls] = frozenset(name for name, _ in _defaults(cls))
    return found


C = TypeVar("C", bound=Context)


# --- what a step sees -------------------------------------------------------------------------


class View(Generic[C]):
    """Everything a screen may read during one step. Built per step, never shared."""

    __slots__ = ("msisdn", "session_ref", "ctx", "catalog", "data", "settings", "_changes")

    def __init__(
        self,
        *,
        msisdn: str,
        session_ref: str,
        ctx: C,
        catalog: Catalog,
        data: Answers,
        settings: Any,
    ) -> None:
        self.msisdn = msisdn
        self.session_ref = session_ref
        self.ctx = ctx
        self.catalog = catalog
        self.data = data
        self.settings = settings
        self._changes = 0  # store changes this step has made so far

    @property
    def lang(self) -> Lang:
        return self.ctx.lang

    @property
    def t(self) -> Texts:
        return texts(self.ctx.lang)

    def fetch(self, request: Request) -> Any:
        """The store's answer to ``request``, or :class:`NeedData` if not yet asked.

        A step runs again from its start after every answer, so it asks the same things in
        the same order; answers are filed by how many changes came before them. (The gateway
        may instead have the step wait here for the answer, in a greenlet: ``data`` then
        fetches what it lacks. Either way a step must ask the same things in the same order.)
        """
        key = (self._changes, request)
        try:
            answer = self.data[key]
        except KeyError:
            raise NeedData(request, key) from None
        if isinstance(request, CHANGES):
            self._changes += 1
        return answer


# --- what a screen declares -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Go:
    """Send ``event`` with ``args`` (the context's ``on_<event>`` gets them)."""

    event: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Invalid:
    """Not acceptable here: show the same screen with the text ``key`` above it."""

    key: str = "error.choice"
    args: Mapping[str, Any] = field(default_factory=dict)


Outcome = Go | Invalid


@dataclass(frozen=True, slots=True)
class Option:
    """A numbered choice below the rows, on every page: ``label`` (a text key, filled from the
    screen's ``values``) sends ``event``.

    ``when`` names a screen method ``(view) -> bool``: the option shows only when it is true.
    ``do`` names a screen method ``(view) -> Outcome`` that decides at the moment of choosing
    (it may ask the store); it sends one of ``also`` or ``event``, or refuses.
    """

    label: str
    event: str
    when: str = ""
    do: str = ""
    also: tuple[str, ...] = ()  # other events ``do`` may send
    args: Mapping[str, Any] = field(default_factory=dict)  # sent with ``event``

    @property
    def events(self) -> tuple[str, ...]:
        return (self.event, *self.also)


@dataclass(frozen=True, slots=True)
class Row:
    """One item of a list: the values of its line, and the arguments choosing it sends."""

    values: Mapping[str, Any]
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rows:
    """A list, paginated by the screen budget: one ``line`` (a text key) per item of the
    screen's ``items``. With ``event``, rows are numbered choices that send it with the row's
    args (through the ``do`` method if named, as for :class:`Option`); without, they are read.

    ``elastic`` names the value of a line shortened (with an ellipsis) when a line alone
    cannot fit a screen, so a long name never hides the choice. ``fit`` makes a compact list:
    a reason shown above it takes the title's first line rather than a row's room, and with
    ``fit`` above 1 that value is shortened alike in every line until ``fit`` of the longest
    lines share a page (never below ``FIT_FLOOR`` characters): several lines a screen.
    """

    line: str
    event: str = ""
    do: str = ""
    also: tuple[str, ...] = ()
    elastic: str = ""
    fit: int = 0

    @property
    def events(self) -> tuple[str, ...]:
        return (self.event, *self.also) if self.event else ()


@dataclass(frozen=True, slots=True)
class Prompt:
    """Free text is expected: the screen's ``parse`` method turns it into an outcome that
    sends ``event`` (or one of ``also``)."""

    event: str
    also: tuple[str, ...] = ()

    @property
    def events(self) -> tuple[str, ...]:
        return (self.event, *self.also)


class Screen(Generic[C]):
    """What one state shows. Subclasses set the class attributes and override the hooks.

    ``title`` and ``footer`` are text keys filled from :meth:`values`; ``elastic`` names the
    values of the title shortened (first ones first) until the screen fits. A screen with
    other titles for other cases (an empty cart) lists them in ``titles`` and picks one in
    :meth:`title_key`; a footer shown only sometimes names its condition method in
    ``footer_when``. ``reasons`` are the text keys the screen may show above itself (pages
    leave room for the longest).
    """

    state: ClassVar[str]
    title: ClassVar[str]
    titles: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()
    rows: ClassVar[Rows | None] = None
    prompt: ClassVar[Prompt | None] = None
    footer: ClassVar[str] = ""
    footer_when: ClassVar[str] = ""
    elastic: ClassVar[str | tuple[str, ...]] = ""
    end: ClassVar[bool] = False  # the last screen of the session
    nav: ClassVar[bool] = True  # "0 Back 00 Home"
    # What is typed here is secret (a PIN): the gateway masks it before it keeps the path.
    secret: ClassVar[bool] = False
    # A choice screen: when it offers exactly one choice (one option, or one numbered row and
    # no option), the choice is made for the subscriber and the screen is passed, going
    # forward and coming back alike. One step less for a choice that is no choice.
    skip_one: ClassVar[bool] = False
    reasons: ClassVar[tuple[str, ...]] = ("error.choice",)

    def title_key(self, view: View[C]) -> str:
        """The title for this view: ``title``, or one of ``titles``."""
        return self.title

    def values(self, view: View[C]) -> Mapping[str, Any]:
        """The values of the title's, options' and footer's placeholders."""
        return {}

    def items(self, view: View[C]) -> Sequence[Row]:
        """The rows, when the screen declares ``rows``."""
        return ()

    def parse(self, view: View[C], text: str) -> Outcome:
        """What typed ``text`` means, when the screen declares a ``prompt``."""
        return Invalid()

    def cache_key(self, view: View[C]) -> tuple[Any, ...] | None:
        """What, besides the catalog and the language, this screen's content depends on
        (``()``: nothing; None: more than a key can say, built every time). Screens that say
        are built once per reading of the catalog and key, and so are their pages: the key
        must hold everything of the session the screen shows (a product page: whether one
        more fits in this cart)."""
        return None

    def samples(self, view: View[C]) -> Sequence[Mapping[str, Any]]:
        """Context changes for ``okryu flow check`` to render besides the journey's worst
        case (a screen about one product, say, is checked with each product)."""
        return ({},)

    @classmethod
    def events(cls) -> set[str]:
        """Every event this screen can send."""
        sent = {event for option in cls.options for event in option.events}
        if cls.rows is not None:
            sent.update(cls.rows.events)
        if cls.prompt is not None:
            sent.update(cls.prompt.events)
        return sent

    @classmethod
    def text_keys(cls) -> set[str]:
        """Every text key the declaration names."""
        keys = {cls.title, *cls.titles, *cls.reasons, *(option.label for option in cls.options)}
        if cls.footer:
            keys.add(cls.footer)
        if cls.rows is not None:
            keys.add(cls.rows.line)
        return keys


class Journey(Generic[C]):
    """One journey: its chart, context and screens, and where home is.

    ``screen_base`` is the journey's screen class: every subclass of it is one of its screens.
    ``funnel`` lists the states of the order path, in order (the funnel report's steps).
    ``moved`` maps states a deploy renamed to their new names.
    """

    chart: ClassVar[type[StateChart[Any]]]
    context: ClassVar[type[Context]]
    screen_base: ClassVar[type[Screen[Any]]]
    home: ClassVar[str]
    funnel: ClassVar[tuple[str, ...]] = ()
    moved: ClassVar[Mapping[str, str]] = {}

    def screens(self) -> dict[str, Screen[C]]:
        """One instance of each screen, by state."""
        found: dict[str, Screen[C]] = {}
        for cls in _subclasses(self.screen_base):
            state = getattr(cls, "state", None)
            if state is None:
                continue  # an abstract intermediate class
            if state in found:
                raise InvalidJourney(
                    f"{_where(cls)}: screens {type(found[state]).__name__} and {cls.__name__}"
                    f" both declare state {state!r}"
                )
            found[state] = cls()
        return found

    def begin(self, view: View[C]) -> None:
        """A new session is starting (before the home screen): know the subscriber."""

    def worst_case(self, catalog: Catalog) -> Mapping[str, Any]:
        """Context fields at their most demanding, for ``okryu flow check``."""
        return {}

    def answers(self, catalog: Catalog, msisdn: str) -> dict[tuple[int, Request], Any]:
        """The store's answers at their most demanding, for ``okryu flow check``."""
        return {}


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def _where(cls: type[Any]) -> str:
    """``menus/shop.py:120``: where a class is declared, for messages that point at it."""
    import inspect
    import sys
    from pathlib import Path

    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if file is None:
        return cls.__qualname__
    path = Path(file)
    with_line = ""
    try:
        with_line = f":{inspect.getsourcelines(cls)[1]}"
    except (OSError, TypeError):
        pass  # made at run time (type()): the module is all there is to say
    try:
        shown = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(path)
    return f"{shown}{with_line}"


def fingerprint(parts: Sequence[str]) -> str:
    """A short, stable version of a declaration."""
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=4).hexdigest()


Effect = Callable[..., None]
