"""How a hop is classified against the stored session: start, continue, replay or late."""

from __future__ import annotations

from gateway.hop import plan
from gateway.messages import Inbound
from gateway.sessions import Record, trail, walk

MSISDN = "+8501912345678"


def at(ref: str, *inputs: str) -> Inbound:
    return Inbound("africastalking", ref, MSISDN, "*123#", inputs, new_session=not inputs)


def latest(ref: str, *inputs: str, new: bool = False, seq: int | None = None) -> Inbound:
    return Inbound("arkesel", ref, MSISDN, "*123#", inputs, "latest", new_session=new, sequence=seq)


STORED = Record(ref="s2", **walk(["1", "1"]), hops=3, at=100.0, recent=["s1"])


def test_plan_path_dialect() -> None:
    assert plan(at("s2", "1", "1"), STORED).kind == "replay"
    assert plan(at("s2", "1", "1", "2"), STORED).inputs == ("2",)
    assert plan(at("s2", "2"), STORED).kind == "late"
    assert plan(at("s3"), STORED).kind == "start"


def test_plan_hop_of_an_earlier_session_is_late_not_a_new_session() -> None:
    assert plan(at("s1", "1", "1", "1", "1", "2", "1", "1", "x", "1", "1"), STORED).kind == "late"


def test_plan_stray_hop_of_an_unknown_session_starts_clean() -> None:
    stray = plan(at("s9", "1", "1", "1", "1", "2", "1", "1", "x", "1", "1"), STORED)
    assert (stray.kind, stray.inputs) == ("start", ())  # its inputs are never replayed
    shortcut = plan(
        Inbound("africastalking", "s9", MSISDN, "*123#", ("1", "2"), new_session=True), STORED
    )
    assert (shortcut.kind, shortcut.inputs) == ("start", ("1", "2"))


def test_plan_latest_dialect_by_hop_number() -> None:
    assert plan(latest("s2", "2", seq=4), STORED).kind == "continue"
    assert plan(latest("s2", "1", seq=3), STORED).kind == "replay"
    assert plan(latest("s2", "1", seq=2), STORED).kind == "late"


def test_plan_latest_dialect_without_hop_numbers_uses_the_retry_window() -> None:
    assert plan(latest("s2", "1"), STORED, now=100.5, retry_window=1.0).kind == "replay"
    assert plan(latest("s2", "1"), STORED, now=101.5, retry_window=1.0).kind == "continue"
    assert plan(latest("s2", "2"), STORED, now=100.5, retry_window=1.0).kind == "continue"
    assert plan(latest("s2", new=True), STORED).kind == "replay"  # the opening request again


def test_plan_no_retry_window_takes_no_answer_for_a_retry_however_soon() -> None:
    # The record's time is kept to the millisecond: the next answer, within half of one,
    # reads a time before it (or another process's clock does). No window means no retry.
    assert plan(latest("s2", "1"), STORED, now=99.9996, retry_window=0.0).kind == "continue"
    assert plan(latest("s2", "1"), STORED, now=100.0, retry_window=0.0).kind == "continue"


def test_plan_record_of_the_first_release_reads_its_path() -> None:
    first_release = (
        b'1|{"ref":"s2","path":["1","1"],"hops":3,"reply":["x",false],"st":"home","c":{},"at":1.0}'
    )
    record = Record.loads(first_release)
    assert record is not None and (record.depth, record.last) == (2, "1")
    assert record.nonce == ""  # made before nonces: keyed by the session id, as it was
    assert plan(at("s2", "1", "1"), record).kind == "replay"
    assert plan(at("s2", "1", "1", "3"), record).inputs == ("3",)


def test_plan_trail_tells_paths_apart() -> None:
    assert trail(["1", "2", "3"]) == trail(("1", "2", "3"))
    assert trail(["1*2"]) != trail(["1", "2"]) and trail([]) == ""
    assert trail(["1", "2"]) != trail(["1", "2", ""])  # an empty answer is an answer


def test_plan_secret_inputs_are_masked_in_what_the_record_keeps() -> None:
    hop = plan(at("s2", "1", "1", "4821"), STORED)
    kept_trail, last, masked = hop.kept((0,))  # "4821" was typed on a secret screen
    assert (last, masked) == ("*", [2])
    assert kept_trail == trail(["1", "1", "*"]) != trail(["1", "1", "4821"])
    after = Record(ref="s2", depth=3, trail=kept_trail, last=last, masked=masked, hops=4)
    again = Record.loads(after.dumps(1))
    assert again is not None and again.masked == [2] and b"4821" not in after.dumps(1)
    # The next hop repeats the PIN in its path: masked again, it continues the session.
    following = plan(at("s2", "1", "1", "4821", "0"), again)
    assert (following.kind, following.inputs) == ("continue", ("0",))
    assert following.kept(())[:2] == (trail(["1", "1", "*", "0"]), "0")
    assert plan(at("s2", "1", "1", "4821"), again).kind == "replay"
    assert plan(at("s2", "1", "2", "4821"), again).kind == "late"  # not its path


def test_plan_latest_dialect_retry_of_a_secret_answer_is_a_replay_within_the_window() -> None:
    typed = plan(latest("s2", "4821"), STORED, now=100.5, retry_window=1.0)
    assert typed.kind == "continue"
    _, last, _ = typed.kept((0,))
    after = Record(ref="s2", depth=3, last=last, hops=4, at=200.0)
    assert last == "*" and b"4821" not in after.dumps(1)
    assert plan(latest("s2", "4821"), after, now=200.5, retry_window=1.0).kind == "replay"
    assert plan(latest("s2", "4821"), after, now=201.5, retry_window=1.0).kind == "continue"


def test_plan_record_keeps_its_nonce() -> None:
    kept = Record.loads(Record(ref="s2", nonce="0a1b2c3d").dumps(1))
    assert kept is not None and kept.nonce == "0a1b2c3d"
    assert b'"n"' not in Record(ref="s2").dumps(1)  # none: nothing written
