"""The PyMongo side of the HA benchmark (crates/sdam-habench): one measurement per process.

The bench (the Rust binary) starts the scripted servers, runs this program with the
environment that scripts/install-pymongo.sh made, and reads its output: lines of JSON, plus
`ready` / `done` markers where the bench must act at the right moment. Every MongoClient gets
the connection string the bench built, so its options are the other implementations' options.

    python habench_peer.py discovery URI MEMBERS     # H1
    python habench_peer.py failover URI              # H2
    python habench_peer.py spread URI MEMBERS OPS SETTLE_MS   # H3
    python habench_peer.py idle URI MEMBERS          # H4 (the bench reads /proc while it idles)
    python habench_peer.py handshake URI             # one insert and a ping (the server tests)
"""

import collections
import json
import sys
import threading
import time

import pymongo
from pymongo import monitoring
from pymongo.errors import ConnectionFailure


class KnownServers(monitoring.TopologyListener):
    """Sets `all_known` once `members` servers have a known type (not Unknown)."""

    def __init__(self, members):
        self.members = members
        self.all_known = threading.Event()
        self.at = None

    def opened(self, event):
        pass

    def closed(self, event):
        pass

    def description_changed(self, event):
        known = [
            s
            for s in event.new_description.server_descriptions().values()
            if s.server_type != pymongo.server_type.SERVER_TYPE.Unknown
        ]
        if len(known) >= self.members and not self.all_known.is_set():
            self.at = time.perf_counter()
            self.all_known.set()


def emit(value):
    sys.stdout.write(value if isinstance(value, str) else json.dumps(value))
    sys.stdout.write("\n")
    sys.stdout.flush()


def collection(client):
    return client.get_database("habench").get_collection("writes")


def discovery(uri, members):
    """H1: from construction to the first successful write, and to all members known.

    PyMongo publishes SDAM events from a background thread once a second, so a listener
    would see "all known" up to a second late; a thread reads the topology description
    every millisecond instead (the resolution of this figure)."""
    members = int(members)
    start = time.perf_counter()
    client = pymongo.MongoClient(uri)
    known = {}

    def watch():
        while len(client.nodes) < members:
            if time.perf_counter() - start > 30:
                return
            time.sleep(0.001)
        known["at"] = time.perf_counter()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    collection(client).insert_one({"n": 1})
    first_write = time.perf_counter()
    watcher.join(31)
    if "at" not in known:
        raise SystemExit("discovery: not every member became known in 30 s")
    emit({"first_write_ms": (first_write - start) * 1e3, "all_known_ms": (known["at"] - start) * 1e3})
    client.close()


def failover(uri):
    """H2: write every 2 ms, retrying each retryable error at once. The bench kills the
    primary, then writes `elected NS` to our stdin right before it elects another member (NS:
    the wall clock, ns); the first write that succeeds at or after NS is the recovery (no
    write can succeed between the kill and the election). Prints its wall-clock time."""
    client = pymongo.MongoClient(uri)
    writes = collection(client)
    writes.insert_one({"n": 0})
    elected = {}
    told = threading.Event()

    def listen():
        for line in sys.stdin:
            if line.startswith("elected "):
                elected["ns"] = int(line.split()[1])
                told.set()
                return

    threading.Thread(target=listen, daemon=True).start()
    emit("ready")
    errors = 0
    first_error = None
    # The stdin line may arrive after a write that already succeeded: keep the recent ones.
    recent = collections.deque(maxlen=64)
    n = 0
    while True:
        n += 1
        try:
            writes.insert_one({"n": n})
        except ConnectionFailure as e:  # AutoReconnect, NotPrimaryError, ServerSelectionTimeoutError
            errors += 1
            if first_error is None:
                first_error = "%s: %s" % (type(e).__name__, e)
            if errors > 100000:
                raise
            continue
        recent.append(time.time_ns())
        if told.is_set():
            after = [t for t in recent if t >= elected["ns"]]
            if after:
                emit({"success_unix_ns": min(after), "errors": errors, "first_error": first_error})
                break
        time.sleep(0.002)
    client.close()


def spread(uri, members, ops, settle_ms):
    """H3: once every mongos is known and the RTT averages settled, OPS writes one after the
    other; the bench counts where they arrived. Prints the average RTTs PyMongo holds."""
    listener = KnownServers(int(members))
    client = pymongo.MongoClient(uri, event_listeners=[listener])
    if not listener.all_known.wait(30):
        raise SystemExit("spread: not every mongos became known in 30 s")
    time.sleep(int(settle_ms) / 1e3)
    writes = collection(client)
    for n in range(int(ops)):
        writes.insert_one({"n": n})
    rtt = {
        "%s:%d" % address: (sd.round_trip_time * 1e3 if sd.round_trip_time is not None else None)
        for address, sd in client.topology_description.server_descriptions().items()
    }
    emit({"done": True, "rtt_ms": rtt})
    sys.stdin.read()  # the bench reads the servers' counts, then closes our stdin
    client.close()


def idle(uri, members):
    """H4: discover, then do nothing until the bench closes stdin."""
    listener = KnownServers(int(members))
    client = pymongo.MongoClient(uri, event_listeners=[listener])
    if not listener.all_known.wait(60):
        raise SystemExit("idle: not every server became known in 60 s")
    emit("ready")
    sys.stdin.read()
    client.close()


def handshake(uri):
    """One insert and a ping through a full PyMongo client: the scripted servers' test."""
    client = pymongo.MongoClient(uri)
    result = collection(client).insert_one({"n": 1})
    ping = client.admin.command("ping")
    emit({"acknowledged": result.acknowledged, "ping": ping.get("ok"), "version": pymongo.version})
    client.close()


def main(argv):
    commands = {"discovery": discovery, "failover": failover, "spread": spread, "idle": idle, "handshake": handshake}
    if len(argv) < 2 or argv[1] not in commands:
        raise SystemExit(__doc__)
    commands[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
