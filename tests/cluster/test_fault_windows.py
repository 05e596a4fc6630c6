"""The cluster test's accounting of errors (tests/cluster/__main__.py): an error counts against
the fault whose window holds it, up to a grace after the fault ends; a create the client
retried is not an error unless it was the last attempt."""

from tests.cluster.__main__ import WINDOW_GRACE, errors_in_windows, is_retried


def row(t, name="search", status=0, error=True, retry=0):
    return {"t": t, "name": name, "status": status, "ms": 1.0, "error": error, "retry": retry}


def test_errors_are_counted_against_the_fault_whose_window_holds_them():
    windows = [
        {"fault": "node", "start": 100.0, "end": 110.0},
        {"fault": "broker", "start": 200.0, "end": 210.0},
    ]
    rows = [
        row(99.8),  # just before the kill: the request was in flight
        row(110.0 + WINDOW_GRACE - 0.1),
        row(205.0, status=503),
        row(150.0),  # nothing was down
        row(150.0, error=False, status=200),
        row(105.0, name="create referral", status=503, retry=0),  # retried with its key
    ]
    counted, outside = errors_in_windows(rows, windows)
    assert counted == {"node": 2, "broker": 1}
    assert outside == 1


def test_only_the_last_attempt_of_a_create_counts_as_an_error():
    assert is_retried(row(1, name="create referral", status=502, retry=3))
    assert not is_retried(row(1, name="create referral", status=502, retry=7))
    assert not is_retried(row(1, name="create referral", status=400, retry=0))
    assert not is_retried(row(1, name="search", status=503, retry=0))
