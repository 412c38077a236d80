"""pipelines.launch: which rank's error a failed multi-process training reports."""

from types import SimpleNamespace

from pipelines.launch import root_failure

GLOO = (
    "RuntimeError: [../gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:33507. "
    "This is typically caused by a remote worker crashing."
)


def failure(message, timestamp: int, exitcode: int = 1):
    return SimpleNamespace(message={"message": message, "extraInfo": {}}, timestamp=timestamp, exitcode=exitcode)


def test_the_cause_beats_a_peer_that_broke_in_the_same_second():
    failures = {0: failure(GLOO, 100), 1: failure("EAEError: cannot read shard 7", 100)}
    rank, chosen, message = root_failure(failures)
    assert (rank, message) == (1, "EAEError: cannot read shard 7") and chosen is failures[1]


def test_a_peer_error_is_reported_when_it_is_all_there_is():
    rank, _, message = root_failure({2: failure(GLOO, 7), 1: failure(GLOO, 7)})
    assert rank == 1 and message.startswith("RuntimeError: [../gloo")


def test_otherwise_the_earliest_failure_then_the_lowest_rank():
    failures = {0: failure("ValueError: b", 9), 3: failure("ValueError: a", 8), 2: failure("ValueError: c", 8)}
    assert root_failure(failures)[0] == 2
    assert root_failure({0: failure("plain text\n  wrapped", 1)})[2] == "plain text wrapped"
