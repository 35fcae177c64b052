"""Progress passed on in steps, for commands whose progress goes to the log."""

from __future__ import annotations

from recs.pipeline.progress import every_step


def test_every_step_passes_on_each_tenth_and_the_end() -> None:
    seen: list[float] = []
    on_progress = every_step(seen.append)
    for k in range(1, 41):  # 2.5 % at a time
        on_progress(k / 40)
    assert seen == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_the_end_is_passed_on_even_right_after_a_step() -> None:
    seen: list[float] = []
    on_progress = every_step(seen.append, step=0.5)
    for done in (0.5, 0.55, 1.0):
        on_progress(done)
    assert seen == [0.5, 1.0]


def test_the_end_is_passed_on_once() -> None:
    seen: list[float] = []
    on_progress = every_step(seen.append, step=0.3)
    for done in (0.3, 0.6, 0.9, 1.0, 1.0):
        on_progress(done)
    assert seen == [0.3, 0.6, 0.9, 1.0]
