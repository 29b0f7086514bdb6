"""runner/poison.py: only a consumer that died with a message in hand counts against it."""

from __future__ import annotations

from types import SimpleNamespace

from jobq.runner.poison import PoisonGuard, message_key


def test_message_key_prefers_the_message_id_else_hashes_the_body():
    assert message_key(SimpleNamespace(message_id="abc"), b"x") == "id:abc"
    key = message_key(SimpleNamespace(message_id=None), b"x")
    assert key.startswith("sha256:") and key == message_key(SimpleNamespace(message_id=""), b"x")


def test_a_death_with_a_message_in_hand_counts_one_crash(tmp_path):
    PoisonGuard(tmp_path).hold("id:m1")  # ...and the process dies here
    guard = PoisonGuard(tmp_path)
    assert guard.recover() == ["id:m1"]
    assert guard.crashes("id:m1") == 1
    assert PoisonGuard(tmp_path).recover() == [], "the same death is not counted twice"


def test_crashes_add_up_across_restarts_and_done_forgets_them(tmp_path):
    for expected in (1, 2, 3):
        guard = PoisonGuard(tmp_path)
        guard.recover()
        assert guard.crashes("id:m1") == expected - 1
        guard.hold("id:m1")
    guard = PoisonGuard(tmp_path)
    guard.recover()
    assert guard.crashes("id:m1") == 3
    guard.done("id:m1")
    again = PoisonGuard(tmp_path)
    again.recover()
    assert again.crashes("id:m1") == 0


def test_a_clean_finish_counts_nothing(tmp_path):
    guard = PoisonGuard(tmp_path)
    guard.recover()
    guard.hold("id:m1")
    guard.done("id:m1")
    fresh = PoisonGuard(tmp_path)
    assert fresh.recover() == [] and fresh.crashes("id:m1") == 0
