"""One holder at a time of a singleton role (relay, checkpoint signer), on both stores, and a standby takes over
once the holder is killed (kill -9: no clean-up of its own)."""

import subprocess
import sys
import time
from pathlib import Path

from services.infra.lease import Lease

HOLDER = """
import sys, time
from services.infra.lease import Lease
lease = Lease(sys.argv[1], "relay", sys.argv[2])
assert lease.try_acquire()
print("held", flush=True)
sys.stdin.read()  # until killed
"""


def test_one_holder_and_a_standby_takes_over_after_kill_9(database_url: str, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, database_url, str(tmp_path)], cwd=root,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    standby = Lease(database_url, "relay", tmp_path)
    other_role = Lease(database_url, "signer", tmp_path)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not standby.try_acquire(), "two holders of one lease"
        assert other_role.try_acquire(), "another role's lease is its own"
        holder.kill()  # SIGKILL
        holder.wait(10)
        deadline = time.monotonic() + 10
        while not standby.try_acquire():
            assert time.monotonic() < deadline, "the standby did not take over within 10 s"
            time.sleep(0.1)
        assert standby.held and standby.alive()
        # and the new holder keeps it against a newcomer until it releases it
        newcomer = Lease(database_url, "relay", tmp_path)
        assert not newcomer.try_acquire()
        standby.release()
        assert newcomer.try_acquire()
        newcomer.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        standby.close()
        other_role.close()
