"""The LoadBalancing locking and result logs, exercised by real processes.

These tests use the claim queue and the logs directly (no task, no
scheduler): many processes race for the same items, one is killed with
SIGKILL, logs are cut short; what must hold is that every item is claimed
exactly once and every recorded result can be read back.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from psyrun.backend.item_queue import (
    BatchSizer,
    Claim,
    ItemQueue,
    Liveness,
    Owner,
    QueueError,
)
from psyrun.backend.result_log import ResultLog, read_log

CTX = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                  else "spawn")


def _pull(queue_dir: str, out_dir: str, seed: int, sleep_share: float) -> None:
    """A stand-in worker process: claim, 'compute', log each item."""
    rng = random.Random(seed)
    queue = ItemQueue(queue_dir)
    owner = Owner.current()
    sizer = BatchSizer(queue.meta.n_processes, target_seconds=0.005)
    with ResultLog(Path(out_dir) / f"{owner.label}.log", {"owner": owner.label}) as log:
        while True:
            began = time.perf_counter()
            claim = queue.claim(owner, sizer.next_size(queue.unclaimed))
            if claim is None:
                return
            for position in claim.positions():
                if rng.random() < sleep_share:
                    time.sleep(rng.random() * 0.002)
                log.add_result(position, {"x": position, "y": position * 3})
            sizer.record(len(claim), time.perf_counter() - began)


def _run_pullers(tmp_path: Path, n_items: int, n_procs: int, sleep_share: float = 0.02):
    queue = ItemQueue.create(tmp_path / "queue", n_items, n_procs)
    out = tmp_path / "out"
    out.mkdir()
    procs = [CTX.Process(target=_pull, args=(str(queue.directory), str(out), seed, sleep_share))
             for seed in range(n_procs)]
    for p in procs:
        p.start()
    return queue, out, procs


def test_eight_processes_claim_every_item_exactly_once(tmp_path):
    n = 10_000
    queue, out, procs = _run_pullers(tmp_path, n, 8)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    claims = list(queue.claims())
    claimed = [i for c in claims for i in c.positions()]
    assert sorted(claimed) == list(range(n))
    # the chain is contiguous: each claim starts where the previous one stopped
    assert all(a.stop == b.start for a, b in zip(claims, claims[1:]))
    logs = [read_log(p) for p in sorted(out.glob("*.log"))]
    positions = [i for log in logs for i in log.results]
    assert sorted(positions) == list(range(n))
    assert all(row == {"x": i, "y": 3 * i} for log in logs for i, row in log.results.items())
    # each process logged exactly what it claimed
    for log in logs:
        mine = {i for c in claims if c.owner.label == log.header["owner"] for i in c.positions()}
        assert set(log.results) == mine
    assert len({c.owner.token for c in claims}) > 1  # the work really was shared


def _claim_singles(queue_dir: str, out: str) -> None:
    queue = ItemQueue(queue_dir)
    owner = Owner.current()
    taken = []
    while (claim := queue.claim(owner, 1)) is not None:
        taken.append(claim.start)
    Path(out, f"{owner.label}.txt").write_text(" ".join(map(str, taken)))


def test_single_item_claims_under_full_contention(tmp_path):
    # Every claim races with seven others for the same ticket.
    n = 800
    queue = ItemQueue.create(tmp_path / "queue", n, 8)
    out = tmp_path / "out"
    out.mkdir()
    procs = [CTX.Process(target=_claim_singles, args=(str(queue.directory), str(out)))
             for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    taken = [int(i) for f in out.iterdir() for i in f.read_text().split()]
    assert sorted(taken) == list(range(n))
    assert [c.start for c in queue.claims()] == list(range(n))


def test_killed_process_loses_only_its_claimed_unfinished_items(tmp_path):
    n = 4000
    queue, out, procs = _run_pullers(tmp_path, n, 4, sleep_share=0.5)
    time.sleep(0.15)
    victim = procs[1]
    os.kill(victim.pid, signal.SIGKILL)
    for p in procs:
        p.join(60)
    assert victim.exitcode == -signal.SIGKILL
    assert all(p.exitcode == 0 for p in procs if p is not victim)
    claims = list(queue.claims())
    assert sorted(i for c in claims for i in c.positions()) == list(range(n))
    logs = {read_log(p).header["owner"]: read_log(p) for p in out.glob("*.log")}
    done = [i for log in logs.values() for i in log.results]
    assert len(done) == len(set(done))  # nothing done twice
    # every process has exited and been reaped: all their claims are stale
    assert {c.owner.liveness() for c in claims} == {Liveness.DEAD}
    dead = {c.owner.label for c in claims if c.owner.pid == victim.pid}
    assert len(dead) == 1
    lost = set(range(n)) - set(done)
    lost_claims = {i for c in claims if c.owner.label in dead for i in c.positions()}
    assert lost <= lost_claims  # only the dead process's items can be missing
    # the living ones finished all they claimed
    for c in claims:
        if c.owner.label not in dead:
            assert set(c.positions()) <= set(done)


def test_claims_after_the_end_return_none(tmp_path):
    queue = ItemQueue.create(tmp_path / "q", 5, 1)
    owner = Owner.current()
    assert len(queue.claim(owner, 3)) == 3
    assert queue.claim(owner, 3) == Claim(1, 3, 5, owner)
    assert queue.claim(owner, 1) is None
    empty = ItemQueue.create(tmp_path / "e", 0, 1)
    assert empty.claim(owner, 1) is None


def test_a_second_client_continues_the_chain(tmp_path):
    first = ItemQueue.create(tmp_path / "q", 10, 2)
    second = ItemQueue(tmp_path / "q")
    a, b = Owner.current(), Owner.current()
    assert first.claim(a, 4).positions() == range(0, 4)
    assert second.claim(b, 4).positions() == range(4, 8)  # it read ticket 0 first
    assert first.claim(a, 4).positions() == range(8, 10)


def test_lost_nfs_link_reply_counts_as_won(tmp_path):
    # On NFS a link() that succeeded can report EEXIST; the link count tells.
    tmp = tmp_path / "tmp"
    tmp.write_text("claim\n")
    target = tmp_path / "ticket"
    os.link(tmp, target)  # "our" link went through, the reply got lost
    assert ItemQueue._publish(tmp, target) is True
    other = tmp_path / "other"
    other.write_text("someone else\n")
    assert ItemQueue._publish(other, target) is False


def test_missing_queue_says_what_to_do(tmp_path):
    with pytest.raises(QueueError, match="psy run"):
        ItemQueue(tmp_path / "nowhere")


def test_creating_over_existing_claims_is_refused(tmp_path):
    queue = ItemQueue.create(tmp_path / "q", 3, 1)
    queue.claim(Owner.current(), 1)
    with pytest.raises(QueueError, match="new directory"):
        ItemQueue.create(tmp_path / "q", 3, 1)


# ------------------------------------------------------------------ owners
def test_owner_liveness_of_this_process_and_of_a_dead_one():
    assert Owner.current().liveness() is Liveness.ALIVE
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = Owner(socket.gethostname(), proc.pid, "-", "x")
    assert dead.liveness() is Liveness.DEAD


def test_owner_liveness_zombie_is_dead():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # not reaped yet: a zombie
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert Owner(socket.gethostname(), proc.pid, "-", "x").liveness() is Liveness.DEAD
    finally:
        proc.wait()


def test_owner_liveness_reused_pid_is_dead_and_other_host_unknown():
    me = Owner.current()
    reused = Owner(me.host, me.pid, str(int(me.started) + 1), "x")
    assert reused.liveness() is Liveness.DEAD
    assert Owner(me.host + "-elsewhere", me.pid, me.started, "x").liveness() is Liveness.UNKNOWN


def test_claim_text_round_trip():
    claim = Claim(7, 10, 20, Owner("node-1.cluster", 4242, "999", "abc123"))
    assert Claim.from_text(7, claim.to_text()) == claim


# ------------------------------------------------------------------ batch sizes
def test_batch_sizer_starts_with_one_and_grows_for_fast_items():
    sizer = BatchSizer(n_processes=4, target_seconds=0.05)
    assert sizer.next_size(10_000) == 1
    sizer.record(10, 0.0001)  # 10 us per item
    assert sizer.next_size(10_000) == 1250  # capped by remaining / (2 * processes)
    assert sizer.next_size(1_000_000) == 5000  # capped by the time target
    assert sizer.next_size(3) == 1  # the tail is handed out one by one


def test_batch_sizer_claims_slow_items_one_by_one():
    sizer = BatchSizer(n_processes=2, target_seconds=0.05)
    sizer.record(2, 4.0)
    assert sizer.next_size(1000) == 1


# ------------------------------------------------------------------ logs
def test_log_round_trip_results_and_failures(tmp_path):
    path = tmp_path / "a.log"
    with ResultLog(path, {"round": "0000"}) as log:
        log.add_result(0, {"x": 0, "y": [1, 2]})
        log.add_failure(1, {"params": {"x": 1}, "error": "E", "traceback": "tb"})
        log.add_result(2, {"x": 2, "y": None})
    contents = read_log(path)
    assert contents.header == {"round": "0000"}
    assert contents.results == {0: {"x": 0, "y": [1, 2]}, 2: {"x": 2, "y": None}}
    assert contents.failures == {1: {"params": {"x": 1}, "error": "E", "traceback": "tb"}}
    assert not contents.truncated


def test_log_belongs_to_one_process(tmp_path):
    ResultLog(tmp_path / "a.log", {}).close()
    with pytest.raises(FileExistsError):
        ResultLog(tmp_path / "a.log", {})


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_log_cut_short_keeps_every_complete_frame(tmp_path, cut):
    path = tmp_path / "a.log"
    with ResultLog(path, {"h": 1}) as log:
        for i in range(3):
            log.add_result(i, {"x": i})
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    contents = read_log(path)
    assert contents.truncated
    assert contents.results == {0: {"x": 0}, 1: {"x": 1}}


def test_log_with_damaged_frame_stops_there(tmp_path):
    path = tmp_path / "a.log"
    with ResultLog(path, {"h": 1}) as log:
        for i in range(3):
            log.add_result(i, {"x": i})
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last payload
    path.write_bytes(bytes(data))
    contents = read_log(path)
    assert contents.truncated and sorted(contents.results) == [0, 1]


def test_log_of_killed_writer_is_readable(tmp_path):
    path = tmp_path / "a.log"
    code = (
        "import sys, os, signal\n"
        "from psyrun.backend.result_log import ResultLog\n"
        f"log = ResultLog({str(path)!r}, {{'h': 1}})\n"
        "for i in range(100):\n"
        "    log.add_result(i, {'x': i})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -signal.SIGKILL
    assert read_log(path).results == {i: {"x": i} for i in range(100)}
