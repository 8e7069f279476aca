"""SMS keyword commands: tolerant of case, spacing and a leading ``#``; anything else gets help."""

from __future__ import annotations

from menus import sms
from store.inbox import Answer, Decide

STOP_WORDS = frozenset({"STOP", "UNSUBSCRIBE", "중지", "그만"})
START_WORDS = frozenset({"START", "시작"})


def command(text: str) -> tuple[str, list[str]]:
    """``" #stop "`` -> ``("STOP", [])``: the keyword upper-cased, then its arguments."""
    words = text.strip().lstrip("#").split()
    if not words:
        return "", []
    return words[0].upper(), words[1:]


def decider(dial: str) -> Decide:
    """The function that answers one inbound SMS (see ``store.inbox.receive``)."""

    def decide(text: str, lang: str) -> Answer:
        keyword, _ = command(text)
        if keyword in STOP_WORDS:
            return Answer(reply=sms.stopped(lang), reminders=False)
        if keyword in START_WORDS:
            return Answer(reply=sms.help_text(lang, dial), reminders=True)
        return Answer(reply=sms.help_text(lang, dial))

    return decide
