"""What a webhook carries is shown, never run: the templates escape it."""

from datetime import UTC, datetime

import jinja2

from ingress.console.activity import ActivityIndex
from ingress.console.app import HERE
from schemas.envelope import RawEnvelope

SCRIPT = "<script>alert(1)</script>"


def render(autoescape: bool) -> str:
    index = ActivityIndex()
    index.add_webhook(
        RawEnvelope(
            envelope_id="env-1",
            source_id="shop",
            received_at=datetime(2024, 5, 1, tzinfo=UTC),
            parameters={"lead_id": f"1{SCRIPT}", "lead_status": SCRIPT, "cdp_id": "c"},
        )
    )
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True) if autoescape else False,  # noqa: S701 - the control turns it off on purpose
    )
    total, share = index.identifier_share("shop")
    return environment.get_template("_activity.html").render(
        activity={
            "health": index.health("shop", datetime(2024, 5, 1, tzinfo=UTC)),
            "webhooks": index.recent_webhooks("shop"),
            "conversions": [],
            "invalid": [],
            "dead_letters": [],
            "share_total": total,
            "share": share,
        }
    )


def test_a_webhooks_fields_are_escaped_on_the_source_page() -> None:
    page = render(autoescape=True)
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_control_without_escaping_the_script_would_be_on_the_page() -> None:
    assert SCRIPT in render(autoescape=False)
