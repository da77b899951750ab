"""Decisions written once, I/O twice: step generators and the two thin loops that drive them.

A *steps* generator holds every decision of an exchange with the server: it yields what to send
next (a chat request, a window of passages), is sent back the answer, and returns the result.
A failed send is thrown into it at that ``yield``, where it is handled (a 400 to ``logprobs``)
or annotated (what earlier windows billed) and re-raised. :func:`run` and :func:`arun` only send
and await, so the sync and async paths cannot drift apart: httpx's split, with the logic in
``BaseClient`` and ``Client`` / ``AsyncClient`` left the I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Generic, TypeVar

Out = TypeVar("Out")
In = TypeVar("In")
Result = TypeVar("Result")

Steps = Generator[Out, In, Result]


class _Cursor(Generic[Out, In, Result]):
    """Where a steps generator stands: the request it wants sent, or its result once it is done.

    The generator is resumed in :meth:`advance`, outside the driver's ``except``, so a failure
    thrown into it and re-raised there is not chained to itself as its own context.
    """

    def __init__(self, steps: Steps[Out, In, Result]) -> None:
        self._steps = steps
        self._resume: Callable[[], Out] = steps.__next__
        self.request: Out
        self.result: Result

    def advance(self) -> bool:
        """Resume the steps with the last outcome; True while they want another request sent."""
        try:
            self.request = self._resume()
        except StopIteration as done:
            self.result = done.value
            return False
        return True

    def answered(self, incoming: In) -> None:
        self._resume = lambda: self._steps.send(incoming)

    def failed(self, error: Exception) -> None:
        self._resume = lambda: self._steps.throw(error)


def run(steps: Steps[Out, In, Result], send: Callable[[Out], In]) -> Result:
    """Drive ``steps`` with a blocking ``send``."""
    cursor = _Cursor(steps)
    while cursor.advance():
        try:
            cursor.answered(send(cursor.request))
        except Exception as error:  # the steps decide: handled there, or re-raised from there
            cursor.failed(error)
    return cursor.result


async def arun(steps: Steps[Out, In, Result], send: Callable[[Out], Awaitable[In]]) -> Result:
    """Drive ``steps`` with an awaitable ``send``; a cancellation is not thrown in, it ends the loop."""
    cursor = _Cursor(steps)
    while cursor.advance():
        try:
            cursor.answered(await send(cursor.request))
        except Exception as error:
            cursor.failed(error)
    return cursor.result
