"""The picture of the journey in the README is the journey as declared."""

from __future__ import annotations

from pathlib import Path

from menus.diagram import dot_fingerprint, journey_dot, svg_fingerprint
from menus.shop import Shop

PICTURE = Path(__file__).resolve().parents[2] / "docs" / "journey.svg"


def test_diagram_committed_picture_is_of_the_current_chart() -> None:
    drawn_from = svg_fingerprint(PICTURE.read_text())
    assert drawn_from == dot_fingerprint(journey_dot(Shop())), (
        "docs/journey.svg is stale: run `make diagram` (okryu flow diagram) and commit it"
    )


def test_diagram_is_the_same_text_every_time_and_says_what_it_leaves_out() -> None:
    dot = journey_dot(Shop())
    assert dot == journey_dot(Shop())
    assert "00 goes home from every screen" in dot and "Go home" not in dot
    assert dot.count("style=dashed") == 21  # one back edge per screen that shows 0 Back
