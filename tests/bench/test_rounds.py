"""The interleaved comparison's logic, without load: fake sides and a fake CPU account stand in
for wrk and /proc, so the order, the medians, the ratios, the spreads and the refusals can be
checked exactly."""

import pytest

from tests.bench import rounds


def figures(p50, p95, rps, non_2xx=0, errors=0):
    return {"p50_ms": p50, "p95_ms": p95, "rps": rps, "non_2xx": non_2xx, "errors": errors}


class FakeAccount:
    """Reports the given foreign CPU shares, one per load run, in turn (then 0)."""

    def __init__(self, shares=()):
        self.shares = list(shares)

    def measure(self, run):
        return run(), self.shares.pop(0) if self.shares else 0.0


class Recorder:
    """Sides that return scripted figures and record the order they ran in."""

    def __init__(self, a_runs, b_runs):
        self.calls = []
        self.scripts = {"A": list(a_runs), "B": list(b_runs)}

    def side(self, label):
        def run(connections, duration):
            self.calls.append((label, connections, duration))
            return self.scripts[label].pop(0)

        return rounds.Side(label, run)


def test_abba_order_alternates():
    assert [rounds.abba(i) for i in range(4)] == [(0, 1), (1, 0), (0, 1), (1, 0)]


def test_ratio_of_zero_is_none():
    assert rounds.ratio(5, 0) is None
    assert rounds.ratio(3, 4) == 0.75


def test_spread_is_median_min_and_max():
    assert rounds.spread([0.9, 0.5, 0.7, 0.6]) == {"median": 0.65, "min": 0.5, "max": 0.9}


def test_summarise_takes_medians_per_side_and_ratios_within_each_round():
    pairs = [
        (figures(5.0, 9.0, 100.0), figures(4.0, 6.0, 200.0)),
        (figures(6.0, 8.0, 150.0), figures(3.0, 7.0, 200.0)),
        (figures(4.0, 10.0, 90.0), figures(2.0, 5.0, 100.0)),
    ]
    row = rounds.summarise(
        "search", ("api", "ceiling"), 1, pairs, rounds=3, skipped=1, foreign=[0.01, 0.05, 0.02]
    )
    assert row["name"] == "search, 1 conn"
    assert (row["api_p50_ms"], row["api_p95_ms"], row["api_rps"]) == (5.0, 9.0, 100.0)
    assert (row["ceiling_p50_ms"], row["ceiling_p95_ms"], row["ceiling_rps"]) == (3.0, 6.0, 200.0)
    # Round by round: 0.5, 0.75, 0.9; not the ratio of the medians (100 / 200).
    assert (row["rps_ratio"], row["rps_ratio_min"], row["rps_ratio_max"]) == (0.75, 0.5, 0.9)
    # At one connection the latency ratio too: 1.25, 2.0, 2.0.
    assert (row["p50_ratio"], row["p50_ratio_min"], row["p50_ratio_max"]) == (2.0, 1.25, 2.0)
    assert row["rounds"] == 3 and row["skipped_rounds"] == 1
    assert row["foreign_cpu_max"] == 0.05
    assert row["ok"] is True and not row.get("refused")
    assert row["per_round"][1] == {
        "api": {"p50_ms": 6.0, "p95_ms": 8.0, "rps": 150.0},
        "ceiling": {"p50_ms": 3.0, "p95_ms": 7.0, "rps": 200.0},
        "foreign_cpu": 0.05,
    }


def test_summarise_reports_no_latency_ratio_above_one_connection():
    pairs = [(figures(5, 9, 100), figures(4, 6, 200))] * 3
    row = rounds.summarise("s", ("api", "ceiling"), 16, pairs, rounds=3, skipped=0, foreign=[0] * 3)
    assert "p50_ratio" not in row
    assert row["rps_ratio"] == 0.5


def test_summarise_fails_a_comparison_with_failed_requests():
    pairs = [(figures(5, 9, 100, non_2xx=3), figures(4, 6, 200, errors=1))] * 3
    row = rounds.summarise("s", ("api", "ceiling"), 4, pairs, rounds=3, skipped=0, foreign=[0] * 3)
    assert row["failed_requests"] == 12
    assert row["ok"] is False


def test_summarise_refuses_with_fewer_clean_rounds_than_asked():
    pairs = [(figures(5, 9, 100), figures(4, 6, 200))] * 2
    row = rounds.summarise("s", ("api", "ceiling"), 4, pairs, rounds=3, skipped=4, foreign=[0, 0])
    assert row["refused"] is True and row["ok"] is None
    assert "rps_ratio" not in row and "api_p50_ms" not in row


@pytest.mark.parametrize(
    ("value", "at_least", "bound", "ok"),
    [
        (0.81, True, 0.8, True),
        (0.79, True, 0.8, False),
        (1.3, False, 1.3, True),
        (1.31, False, 1.3, False),
    ],
)
def test_target_passes_on_the_median_ratio(value, at_least, bound, ok):
    metric = "rps_ratio" if at_least else "p50_ratio"
    comparison = {metric: value, f"{metric}_min": value - 0.1, f"{metric}_max": value + 0.1}
    target = rounds.Target("t", metric, 16, bound, at_least=at_least)
    row = rounds.target_row(comparison, target)
    assert row["ok"] is ok
    assert row["ratio"] == value
    assert row["target"] == f"{'≥' if at_least else '≤'}{bound:g} at 16 conn"


def test_target_of_a_refused_comparison_is_refused():
    row = rounds.target_row({"refused": True}, rounds.Target("t", "rps_ratio", 16, 0.8))
    assert row["refused"] is True and row["ok"] is None


def interleave(recorder, account, **options):
    return rounds.interleave(
        "path",
        recorder.side("A"),
        recorder.side("B"),
        account=account,
        duration=7,
        sleep=lambda seconds: None,
        say=lambda message: None,
        **options,
    )


def test_interleave_runs_abba_rounds_at_each_connection_count_after_a_warm_up():
    warm = [figures(1, 1, 1)]
    recorder = Recorder(warm + [figures(2, 3, 50)] * 6, warm + [figures(1, 2, 100)] * 6)
    rows = interleave(
        recorder,
        FakeAccount(),
        connections=(1, 16),
        targets=(rounds.Target("ratio", "rps_ratio", 16, 0.4),),
    )
    assert recorder.calls[:2] == [("A", 16, 2), ("B", 16, 2)]
    measured = [(label, conns) for label, conns, duration in recorder.calls[2:]]
    assert all(duration == 7 for _, _, duration in recorder.calls[2:])
    assert measured == [
        ("A", 1), ("B", 1), ("B", 1), ("A", 1), ("A", 1), ("B", 1),
        ("A", 16), ("B", 16), ("B", 16), ("A", 16), ("A", 16), ("B", 16),
    ]  # fmt: skip
    assert [row["name"] for row in rows] == ["path, 1 conn", "path, 16 conn", "ratio"]
    assert rows[0]["rps_ratio"] == 0.5 and rows[0]["p50_ratio"] == 2.0
    assert rows[2]["ok"] is True and rows[2]["ratio"] == 0.5


def test_interleave_skips_a_round_with_foreign_load_and_runs_another():
    warm = [figures(1, 1, 1)]
    recorder = Recorder(warm + [figures(2, 3, 50)] * 4, warm + [figures(1, 2, 100)] * 4)
    # Warm-up runs are not measured; the second run of the first round saw foreign load.
    account = FakeAccount([0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    (row,) = interleave(recorder, account, connections=(4,), limit=0.1)
    assert row["rounds"] == 3 and row["skipped_rounds"] == 1
    assert len(recorder.calls) == 2 + 8
    assert row["foreign_cpu_max"] == 0.0


def test_interleave_gives_up_after_a_bounded_number_of_rounds_and_refuses():
    recorder = Recorder([figures(2, 3, 50)] * 50, [figures(1, 2, 100)] * 50)
    account = FakeAccount([0.5] * 100)
    rows = interleave(
        recorder,
        account,
        connections=(1, 4, 16),
        limit=0.1,
        extra_rounds=2,
        targets=(rounds.Target("ratio", "rps_ratio", 16, 0.4),),
    )
    # 3 + 2 attempts at the first connection count, none at the others: the machine is busy.
    assert len(recorder.calls) == 2 + 2 * 5
    assert [row.get("refused") for row in rows] == [True, True, True, True]
    assert rows[0]["skipped_rounds"] == 5 and rows[1]["rounds"] == 0


def test_clean_samples_keeps_only_quiet_samples_and_stops_after_a_bounded_number_of_tries():
    runs = iter(range(100))
    account = FakeAccount([0.0, 0.5, 0.0, 0.5, 0.0])
    kept, skipped = rounds.clean_samples(
        lambda: {"n": next(runs)}, account=account, wanted=3, limit=0.1, sleep=lambda s: None
    )
    assert [sample["n"] for sample in kept] == [0, 2, 4] and skipped == 2

    busy = FakeAccount([0.5] * 100)
    kept, skipped = rounds.clean_samples(
        lambda: {}, account=busy, wanted=5, limit=0.1, extra=3, sleep=lambda s: None
    )
    assert kept == [] and skipped == 8
