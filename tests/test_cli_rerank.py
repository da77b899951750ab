"""``swaprank rerank`` given nothing to rerank says so, and how to pass documents (issue 25)."""

from __future__ import annotations

import io
import json

import pytest

from swaprank.cli import main
from tests import scripted_backend


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_documents_is_an_error_that_says_how_to_pass_them(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))  # blank lines only
    assert main(["rerank", "--model", "scripted", "-q", "q"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "InvalidInputError: no documents to rerank: pass them as arguments" in err
    assert "or on stdin, one per line" in err and '{"model"' not in err  # no summary of an empty run


def test_a_terminal_on_stdin_is_told_documents_are_being_read(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("s=0.2 a\ns=0.9 b\n"))
    assert main(["rerank", "--model", "scripted", "-q", "q"]) == 0
    out, err = capsys.readouterr()
    assert "reading documents from stdin, one per line; end with Ctrl-D" in err
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["s=0.9 b", "s=0.2 a"]


def test_documents_as_arguments_do_not_read_stdin(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("s=0.99 never read\n"))
    assert main(["rerank", "--model", "scripted", "-q", "q", "s=0.1 x", "s=0.5 y"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["s=0.5 y", "s=0.1 x"]
    assert "reading documents" not in err
