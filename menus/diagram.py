"""A picture of a journey: ``okryu flow diagram``.

python-statemachine draws the chart (its ``DotGraphMachine``, through pydot); this module
makes the drawing readable and repeatable: ``go_home`` (``00`` from every screen) is said once
in the caption instead of drawn 17 times, ``back`` (``0``) is drawn dashed and grey, and the
library's object ids are replaced by stable names, so the same chart always gives the same DOT
text. The SVG, rendered by Graphviz's ``dot``, carries that text's fingerprint, which is how a
test knows the committed picture is stale without needing Graphviz.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

from menus.journey import Journey, MenuError, fingerprint

GO_HOME, BACK = "Go home", "Back"  # the library's labels of go_home and back
CAPTION = "00 goes home from every screen; dashed: 0 goes back"
FINGERPRINT = re.compile(r"<!-- okryu-journey (\w+) -->")


class DiagramError(MenuError):
    """The picture cannot be drawn here (Graphviz or pydot missing, or dot failed)."""


def journey_dot(journey: Journey[Any]) -> str:
    """The journey's chart as DOT text, the same for the same chart."""
    try:
        from statemachine.contrib.diagram import DotGraphMachine
    except ImportError as error:  # pydot is the library's optional "diagrams" extra
        raise DiagramError(f"drawing needs pydot: pip install 'python-statemachine[diagrams]'"
                           f" ({error})") from None  # fmt: skip
    graph = DotGraphMachine(journey.chart).get_graph()  # type: ignore[no-untyped-call]
    graph.set_label(f"{journey.chart.__name__}: {CAPTION}")
    edges: dict[Any, list[dict[str, Any]]] = graph.obj_dict["edges"]
    for key, items in list(edges.items()):
        kept = []
        for item in items:
            attributes = item["attributes"]
            label = str(attributes.get("label", ""))
            if f">{GO_HOME}<" in label:
                continue
            if f">{BACK}<" in label:
                attributes.update(style="dashed", color="grey50", fontcolor="grey50")
            kept.append(item)
        if kept:
            edges[key] = kept
        else:
            del edges[key]
    return re.sub(r"_\d{6,}", "", graph.to_string())


def render_svg(dot: str) -> str:
    """``dot`` drawn by Graphviz, with its fingerprint in a comment at the top."""
    program = shutil.which("dot")
    if program is None:
        raise DiagramError("drawing needs Graphviz's dot: apt-get install graphviz")
    done = subprocess.run(
        [program, "-Tsvg"], input=dot.encode(), capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise DiagramError(f"dot failed: {done.stderr.decode(errors='replace').strip()[:300]}")
    svg = done.stdout.decode()
    mark = f"<!-- okryu-journey {dot_fingerprint(dot)} -->\n"
    head, _, rest = svg.partition("<svg")
    return head + mark + "<svg" + rest


def dot_fingerprint(dot: str) -> str:
    return fingerprint([dot])


def svg_fingerprint(svg: str) -> str | None:
    """The fingerprint a rendered SVG carries, or None."""
    found = FINGERPRINT.search(svg)
    return found.group(1) if found else None
