"""The Markdown rendering: every part of the plan, every step, a Mermaid flowchart."""

from __future__ import annotations

import re
from pathlib import Path

from sagaguard import load_spec, parse_spec
from sagaguard.planner import Plan, plan
from sagaguard.planner.plan import FlowEdgeKind
from sagaguard.planner.render import render_markdown

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def checkout() -> Plan:
    return plan(load_spec(EXAMPLES / "checkout.yaml"))


def mermaid_block(text: str) -> str:
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "expected exactly one mermaid block"
    return blocks[0]


def test_markdown_has_every_part_of_the_plan() -> None:
    """The seven parts, the example states and the diagram each get a heading."""
    text = render_markdown(checkout())
    for heading in (
        "## 1. Step table",
        "## 2. Rollback sequences",
        "## 3. When a rollback fails",
        "## 4. Decision matrix",
        "## 5. Partial-failure tests",
        "## 6. Production-readiness checklist",
        "## 7. Findings",
        "## Example states",
        "## Flow diagram",
    ):
        assert f"\n{heading}\n" in text, heading


def test_markdown_names_every_step_and_every_test_and_finding() -> None:
    """Nothing of the plan is dropped: step ids, test ids and finding codes all appear."""
    process_plan = checkout()
    text = render_markdown(process_plan)
    for step in process_plan.steps:
        assert f"`{step.id}`" in text
        assert step.action in text
        for condition in step.rollback_conditions:
            assert condition in text
    for test in process_plan.tests:
        assert f"`{test.id}`" in text
    for finding in process_plan.findings:
        assert f"`{finding.code}`" in text
    for item in process_plan.checklist:
        assert item.title in text


def test_markdown_shows_the_journal_before_and_after_recovery() -> None:
    """The example states appear as two journal tables with the plan's statuses."""
    process_plan = checkout()
    text = render_markdown(process_plan)
    states = process_plan.example_states
    section = text.split("## Example states", 1)[1].split("## Flow diagram", 1)[0]
    assert section.count("| operation_id | step_id | status |") == 2
    assert states.recovery in section
    for row in (*states.before, *states.after):
        assert f"| `{row.step_id}` | **{row.status.value}** |" in section


def test_mermaid_flowchart_draws_every_node_and_dashes_the_way_back() -> None:
    """Each flow node is declared; forward edges are solid, every other edge is dashed."""
    process_plan = checkout()
    block = mermaid_block(render_markdown(process_plan))
    assert block.startswith("flowchart TB\n")
    for node in process_plan.flow.nodes:
        assert re.search(rf"^  n_{node.id}\W", block, flags=re.MULTILINE), node.id
    edge_lines = [line for line in block.splitlines() if re.search(r" (-->|-\.->)", line)]
    assert len(edge_lines) == len(process_plan.flow.edges)
    for edge, line in zip(process_plan.flow.edges, edge_lines, strict=True):
        dashed = "-.->" in line
        assert dashed is (edge.kind is not FlowEdgeKind.FORWARD), line


def test_mermaid_labels_cannot_break_the_diagram() -> None:
    """Quotes and angle brackets in spec text become Mermaid entity codes, not syntax."""
    spec = parse_spec(
        """
process: odd
state_store: database
observability: []
steps:
  - id: first
    action: Say "hi" <b>loudly</b>
    changes: [database]
    idempotent: yes
    compensation: Undo it
  - id: end
    changes: [email]
    idempotent: yes
    compensation: none
"""
    )
    block = mermaid_block(render_markdown(plan(spec)))
    assert "#quot;hi#quot;" in block
    assert "#lt;b#gt;" in block
    assert "<b>loudly" not in block
    # A step called `end` must not be a bare Mermaid keyword.
    assert re.search(r"^\s*end\b", block, flags=re.MULTILINE) is None


def test_table_cells_escape_pipes() -> None:
    """A pipe in an action does not split the step table's row."""
    spec = parse_spec(
        """
process: piped
state_store: database
observability: []
steps:
  - id: only
    action: Write a | b to the log
    changes: [database]
    idempotent: yes
"""
    )
    text = render_markdown(plan(spec))
    assert "Write a \\| b to the log" in text


def test_contents_links_use_the_anchors_github_gives_the_headings() -> None:
    """The contents line links to each heading by its GitHub anchor."""
    text = render_markdown(checkout())
    contents = next(line for line in text.splitlines() if line.startswith("**Contents:**"))
    for anchor in (
        "#1-step-table",
        "#3-when-a-rollback-fails",
        "#6-production-readiness-checklist",
        "#7-findings",
        "#example-states",
        "#flow-diagram",
    ):
        assert f"]({anchor})" in contents


def test_multi_line_spec_text_stays_in_its_list_item() -> None:
    """A YAML block scalar's line breaks are folded, so a bullet is never cut in two."""
    spec = parse_spec(
        """
process: folded
description: |
  First line
  second line
state_store: database
observability: []
steps:
  - id: only
    action: |
      Write the row
      and commit it
    changes: [database]
    idempotent: yes
    compensation: Delete the row
"""
    )
    text = render_markdown(plan(spec))
    assert "> First line second line\n" in text
    assert "- **Forward:** Write the row and commit it\n" in text


def test_markdown_introductions_speak_of_checkout_not_of_sagas_in_general() -> None:
    """Each part's opening line names checkout's own steps and routes; no boilerplate."""
    text = render_markdown(checkout())
    for generic in (
        "Recovery runs backward: the latest completed step is undone first.",
        "A failed compensation is its own event with its own alert.",
        "`a → b`: do `a` within its bound",
        "Solid arrows: the forward path. Dashed arrows",
        "for every step →",
    ):
        assert generic not in text, generic
    assert (
        "Recovery runs backward from the step that failed: when book_delivery fails, the "
        "rollback undoes charge_payment first, then reserve_stock and create_order. "
        "send_confirmation_email is best-effort: its failure rolls nothing back and the run "
        "completes. When create_order fails, nothing is undone: the run ends failed."
    ) in text
    assert (
        "If undoing create_order, reserve_stock, charge_payment or book_delivery fails, it is "
        "retried for 15m, at least 3 attempts; then the rollback stops at that step"
    ) in text
    assert "compensation_failed alert to shop-oncall (finance for charge_payment)." in text
    assert (
        "for example `retry → manual review 🔔` for create_order's timeout means retry (at most "
        "3 attempts), then manual review, and shop-oncall is alerted (🔔)."
    ) in text
    assert (
        "**A duplicate request** (any step) → **return the existing run**: the same "
        "operation_id gets the existing run back"
    ) in text


def test_markdown_flow_legend_names_the_paths_of_this_process() -> None:
    """The diagram's key reads each arrow kind on checkout's own steps."""
    text = render_markdown(checkout())
    legend = text.split("## Flow diagram", 1)[1].split("```mermaid", 1)[0]
    assert "- **Solid blue:** the forward path, create_order to send_confirmation_email" in legend
    assert (
        "- **Red dashed:** book_delivery failing starts the rollback at undo charge_payment; "
        "create_order failing ends the run with nothing to undo"
    ) in legend
    assert (
        "- **Grey dashed:** send_confirmation_email failing (best-effort) is skipped: the run "
        "goes on"
    ) in legend
    assert (
        "- **Orange dashed:** the rollback, latest first: undo book_delivery, undo "
        "charge_payment, undo reserve_stock, undo create_order"
    ) in legend


def test_rollback_intro_of_a_process_that_undoes_nothing_says_so() -> None:
    """Only irreversible steps before the last: the intro says what the rollback keeps."""
    text = render_markdown(
        plan(
            parse_spec(
                "process: notify\nstate_store: database\nobservability: []\n"
                "alerts: {default: ops}\nsteps:\n"
                "  - {id: mail, changes: [email], idempotent: no, compensation: none,"
                " required: false}\n"
                "  - {id: push, changes: [queue], idempotent: yes, compensation: none}\n"
            )
        )
    )
    assert (
        "Up to the point of no return (push), recovery cannot undo anything: when push fails, "
        "the rollback keeps mail (cannot be undone) with a mitigation."
    ) in text
    assert "No rollback of notify runs a compensation, so no rollback can fail." in text


def test_a_plan_that_is_not_ready_says_so_first_with_its_errors() -> None:
    """Error findings: the document opens with "Not ready for production" and lists them."""
    blind = plan(
        parse_spec(
            "process: pay\nstate_store: database\nobservability: []\n"
            "alerts: {default: ops}\nsteps:\n"
            "  - {id: charge, changes: [payment], idempotent: no, compensation: Refund}\n"
        )
    )
    text = render_markdown(blind)
    head = text.split("## 1. Step table", 1)[0]
    assert "> **Not ready for production:** 1 error must be fixed first." in head
    assert "> - `SG003` on `charge`:" in head
    assert "Not ready for production" not in render_markdown(checkout())


def test_verify_bound_to_code_reads_as_code_not_as_a_sentence() -> None:
    """checkout_runnable binds charge_payment's verify to checkout_app:find_charge."""
    runnable = plan(load_spec(EXAMPLES / "checkout_runnable.yaml"))
    text = render_markdown(runnable)
    assert (
        "- **Verify the real outcome:** code: `checkout_app:find_charge` (code bound: the "
        "engine asks it)"
    ) in text
    charge = runnable.step("charge_payment")
    assert charge.verify == "checkout_app:find_charge"  # the contract keeps the spec's value
    assert charge.verify_bound
    # A spec whose verify is prose says the engine cannot ask, and how to bind it.
    prose = render_markdown(checkout())
    assert "(described only: no code is bound, so the engine cannot ask" in prose


def test_wording_says_one_attempt_not_one_attempts() -> None:
    once = plan(
        parse_spec(
            "process: once\nstate_store: database\nobservability: []\nsteps:\n"
            "  - {id: write, changes: [database], idempotent: yes, compensation: x,"
            " max_attempts: 1}\n"
            "  - {id: ship, changes: [database], idempotent: yes, compensation: y}\n"
        )
    )
    text = render_markdown(once)
    assert "at most 1 attempt" in text
    assert "1 attempts" not in text
