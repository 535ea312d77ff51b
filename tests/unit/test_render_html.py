"""The HTML rendering: one self-contained, well-formed page that escapes every spec text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sagaguard import load_spec, parse_spec
from sagaguard.planner import Plan, plan
from sagaguard.planner.render import render_html

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "source", "wbr"}
# SVG elements written self-closing (<path/>) are reported by handle_startendtag.

HOSTILE_SPEC = """
process: hostile
description: <img src=x onerror=alert(1)> & friends
state_store: database
observability: []
alerts: {default: "<b>ops</b>"}
steps:
  - id: inject
    action: <script>alert("step")</script>
    changes: [database]
    idempotent: yes
    compensation: "</td></tr><script>alert('undo')</script>"
  - id: notify
    action: Say "hi" & <i>wave</i>
    changes: [email]
    idempotent: no
    compensation: none
    mitigation: <iframe src="https://evil.example/"></iframe>
"""


class PageParser(HTMLParser):
    """Collects tags and attributes, and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, name, value) for name, value in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, name, value) for name, value in attrs]

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def example_plans() -> list[Plan]:
    return [plan(load_spec(path)) for path in sorted(EXAMPLES.glob("*.yaml"))]


@pytest.mark.parametrize("process_plan", example_plans(), ids=lambda p: p.process.name)
def test_html_is_well_formed(process_plan: Plan) -> None:
    """html.parser reads the page with every element closed in order, and one <svg>."""
    parsed = parse(render_html(process_plan))
    assert parsed.problems == []
    assert parsed.stack == []
    assert parsed.tags[0] == "html"
    assert parsed.tags.count("svg") == 1


@pytest.mark.parametrize("process_plan", example_plans(), ids=lambda p: p.process.name)
def test_html_loads_nothing_from_outside(process_plan: Plan) -> None:
    """No script, no stylesheet link, no src attribute; every link is an in-page anchor."""
    page = render_html(process_plan)
    parsed = parse(page)
    assert not {"script", "link", "iframe", "img", "object", "embed"} & set(parsed.tags)
    for tag, name, value in parsed.attrs:
        assert name != "src", f"<{tag} src={value}>"
        if name in ("href", "xlink:href"):
            assert (value or "").startswith("#"), f"<{tag} {name}={value}>"
    assert re.search(r"@import|url\((?!#)", page) is None, "CSS must not fetch anything"
    assert "http://" not in page
    assert "https://" not in page


def test_html_has_a_table_of_contents_that_resolves() -> None:
    """Every in-page link points at an element id that exists on the page."""
    parsed = parse(render_html(plan(load_spec(EXAMPLES / "checkout.yaml"))))
    ids = {value for _, name, value in parsed.attrs if name == "id"}
    targets = {
        (value or "")[1:] for tag, name, value in parsed.attrs if tag == "a" and name == "href"
    }
    assert {"steps", "rollback-sequences", "findings", "flow"} <= targets
    assert targets <= ids


def test_html_shows_every_step_and_diagram_box() -> None:
    """Each step id appears in the page text and each flow node becomes one SVG box."""
    process_plan = plan(load_spec(EXAMPLES / "checkout.yaml"))
    page = render_html(process_plan)
    text = " ".join(parse(page).text)
    for step in process_plan.steps:
        assert step.id in text
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count("<rect ") == len(process_plan.flow.nodes)
    assert svg.count('<g class="edge ') == len(process_plan.flow.edges)


def test_html_escapes_hostile_spec_text() -> None:
    """Markup in actions, compensations, mitigations and routes is shown as text, never run."""
    page = render_html(plan(parse_spec(HOSTILE_SPEC)))
    parsed = parse(page)
    assert parsed.problems == []
    assert not {"script", "img", "iframe", "i"} & set(parsed.tags)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;step&#34;)&lt;/script&gt;" in page
    assert "&lt;/td&gt;&lt;/tr&gt;" in page
    text = "".join(parsed.text)
    assert '<script>alert("step")</script>' in text
    assert "<img src=x onerror=alert(1)> & friends" in text
    assert "<b>ops</b>" in text


def test_html_introductions_and_legend_name_checkout_steps() -> None:
    """The page says what each part means for checkout, as the Markdown does."""
    page = render_html(plan(load_spec(EXAMPLES / "checkout.yaml")))
    text = " ".join("".join(parse(page).text).split())
    assert "Recovery runs backward: the latest completed step is undone first." not in text
    assert "A failed compensation is its own event with its own alert." not in text
    assert "<td>every step</td>" not in page
    assert "when book_delivery fails, the rollback undoes charge_payment first" in text
    assert "send_confirmation_email is best-effort: its failure rolls nothing back" in text
    assert "compensation_failed alert to shop-oncall (finance for charge_payment)" in text
    assert "create_order's timeout means retry (at most 3 attempts), then manual review" in text
    assert "A duplicate request (any step): return the existing run" in text
    legend = re.search(r'<div class="legend">(.*?)</div>', page, flags=re.DOTALL)
    assert legend is not None
    assert '<span class="l-forward">the forward path, create_order to send_confirmation_email' in (
        legend.group(1)
    )
    assert '<span class="l-skipped">send_confirmation_email failing (best-effort)' in (
        legend.group(1)
    )


def test_html_shows_a_verify_bound_to_code_as_code() -> None:
    """A verify that names a function reads `code: module:function`, in code type."""
    page = render_html(plan(load_spec(EXAMPLES / "checkout_runnable.yaml")))
    assert "<dt>verify</dt><dd>code: <code>checkout_app:find_charge</code>" in page
    assert "code bound: the engine asks it" in page


def test_html_runbook_commands_are_code_blocks_without_backticks() -> None:
    """Commands render as <pre><code>, copy as typed, and no literal backtick is left."""
    page = render_html(plan(load_spec(EXAMPLES / "checkout.yaml")))
    blocks = re.findall(r'<pre class="cmd"><code>(.*?)</code></pre>', page, flags=re.DOTALL)
    assert blocks
    commands = [line for block in blocks for line in block.splitlines()]
    assert "sagaguard review list" in commands
    assert any(c.startswith("sagaguard review resolve OPERATION_ID --step ") for c in commands)
    text = "".join(parse(page).text)
    assert "`" not in text
    assert "<code>--as completed</code>" in page


def test_html_opens_with_not_ready_when_a_finding_is_an_error() -> None:
    blind = plan(
        parse_spec(
            "process: pay\nstate_store: database\nobservability: []\n"
            "alerts: {default: ops}\nsteps:\n"
            "  - {id: charge, changes: [payment], idempotent: no, compensation: Refund}\n"
        )
    )
    page = render_html(blind)
    banner = page.index('<div class="not-ready"')
    assert banner < page.index('<section id="steps">')
    assert "Not ready for production" in page[banner : banner + 400]
    assert "<code>SG003</code> on <code>charge</code>" in page
    assert '<div class="not-ready"' not in render_html(plan(load_spec(EXAMPLES / "checkout.yaml")))


def test_html_diagram_scales_to_the_page_width() -> None:
    """The SVG takes the width it is given (no minimum wider than the page) and keeps its
    aspect ratio; the drawing itself is narrow enough for the page."""
    page = render_html(plan(load_spec(EXAMPLES / "b2b_payout.yaml")))
    svg = re.search(r"<svg [^>]*>", page)
    assert svg is not None
    assert "min-width" not in svg.group(0)
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg.group(0)).group(1))  # type: ignore[union-attr]
    assert width <= 1180
