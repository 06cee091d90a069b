"""Random tokens are safe to paste after a command-line flag."""

from __future__ import annotations

import pytest

from smsgate import crypto


def test_a_token_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter(["-looks-like-an-option", "_fine-token"])
    monkeypatch.setattr(crypto.secrets, "token_urlsafe", lambda nbytes: next(draws))
    assert crypto.random_token() == "_fine-token"


def test_tokens_keep_their_length_and_alphabet() -> None:
    tokens = {crypto.random_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(len(t) == 32 and not t.startswith("-") for t in tokens)
