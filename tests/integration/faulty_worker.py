"""The real worker, with one decision made to raise for records whose id starts with
`explode-`: proves a crashing decision parks the webhook instead of losing it."""

from typing import Any

from streams import main
from streams.decisions import process


def _exploding(track: Any) -> Any:
    def track_or_raise(change: Any, *args: Any) -> Any:
        if change.record_id.startswith("explode-"):
            raise ZeroDivisionError("injected failure")
        return track(change, *args)

    return track_or_raise


process.track = _exploding(process.track)  # type: ignore[assignment]

if __name__ == "__main__":
    main.main()
