"""``swaprank serve``: the Reranker as an HTTP service (Cohere v2 and Jina/vLLM rerank APIs).

``create_app(settings, reranker=None)`` builds the ASGI app; ``ServeSettings`` says what it serves.
FastAPI, uvicorn and prometheus-client come with ``pip install 'swaprank[serve]'`` and are imported
only when an app is built.
"""

from swaprank.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from swaprank.serve.app import create_app

        return create_app
    raise AttributeError(name)
