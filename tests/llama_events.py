"""One recorder of LlamaIndex rerank events for the tests that check what the adapter reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent


class RerankEvents(BaseEventHandler):
    """Keeps the ``ReRankStartEvent`` / ``ReRankEndEvent`` objects (every event with ``only_rerank=False``),
    in the order they were emitted."""

    events: list[BaseEvent] = Field(default_factory=list)
    only_rerank: bool = True

    @classmethod
    def class_name(cls) -> str:
        return "RerankEvents"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if not self.only_rerank or isinstance(event, (ReRankStartEvent, ReRankEndEvent)):
            self.events.append(event)

    @property
    def ends(self) -> list[ReRankEndEvent]:
        return [e for e in self.events if isinstance(e, ReRankEndEvent)]


@contextmanager
def recording(*, only_rerank: bool = True) -> Iterator[RerankEvents]:
    """Record rerank events (or every event) on the root dispatcher for the duration of the block."""
    handler = RerankEvents(events=[], only_rerank=only_rerank)
    get_dispatcher().add_event_handler(handler)
    try:
        yield handler
    finally:
        get_dispatcher().event_handlers.remove(handler)
