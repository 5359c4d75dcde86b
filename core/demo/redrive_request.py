"""What the demo's message worker accepts on ``LISTEN opswatch_redrive``: the payloads opswatch's
HTTP-less redrive sends (a JSON list of dead-letter ids, or an object naming the kind and ids)."""

from __future__ import annotations

import json
from dataclasses import dataclass

_MAX_IDS = 5_000
_EVENT_KINDS = {"event", "events", "event_failure", "event_failures"}


@dataclass(frozen=True)
class RedriveRequest:
    dlq_ids: tuple[int, ...] = ()
    message_ids: tuple[int, ...] = ()
    event_ids: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dlq_ids or self.message_ids or self.event_ids)


def parse_redrive_payload(payload: str) -> RedriveRequest | None:
    """``[1, 2]``, ``7``, ``{"kind": "dlq", "ids": [..], "message_ids": [..]}`` or
    ``{"kind": "event", "ids": [..]}``; None if the payload is not understood."""
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, TypeError):
        return None
    if isinstance(data, bool):
        return None
    if isinstance(data, int | list):
        ids = _ids(data)
        return RedriveRequest(dlq_ids=ids[:_MAX_IDS]) if ids else None
    if not isinstance(data, dict):
        return None
    main = _ids(data.get("ids", []))
    messages = _ids(data.get("message_ids", []))
    events = _ids(data.get("event_ids", []))
    dlq = _ids(data.get("dlq_ids", data.get("dead_letter_ids", [])))
    if main is None or messages is None or events is None or dlq is None:
        return None
    if str(data.get("kind", "dlq")).lower() in _EVENT_KINDS:
        events = (*events, *main)
    else:
        dlq = (*dlq, *main)
    request = RedriveRequest(
        dlq_ids=dlq[:_MAX_IDS], message_ids=messages[:_MAX_IDS], event_ids=events[:_MAX_IDS]
    )
    return request if request else None


def _ids(value: object) -> tuple[int, ...] | None:
    items = value if isinstance(value, list) else [value]
    out: list[int] = []
    for item in items:
        if isinstance(item, bool):
            return None
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, str) and item.strip().isdigit():
            out.append(int(item))
        else:
            return None
    return tuple(out)
