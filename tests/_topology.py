"""Start and stop throwaway Redis topologies (a Cluster, a Sentinel group) on loopback.

Standard library only, so ``.ci/services`` runs it with the system ``python3`` before
any virtualenv exists, and tests import it to make topologies of their own (the
failover tests kill masters, so they never touch the shared ones)::

    python3 tests/_topology.py start DIR   # cluster + sentinel group; DIR/services.env
    python3 tests/_topology.py stop DIR    # kill every process in DIR/pids, by PID

Every server runs with this machine's ``redis-server`` (``--sentinel`` for the
sentinels), on free loopback ports, with its files under the state directory, and is
stopped by the PID it wrote there: never by name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Cluster", "SentinelGroup", "start_cluster", "start_sentinel_group", "stop_pids"]

SERVICE = "coatcheck"
SLOTS = 16384


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def _cli(port: int, *args: str, timeout: float = 5.0) -> str:
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    return done.stdout.strip()


def _wait(what: str, test: object, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if test():  # type: ignore[operator]
                return
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis topology: {what} did not happen in time")


def _pid(pidfile: Path, deadline: float) -> int:
    _wait(
        f"{pidfile} to appear", lambda: pidfile.exists() and pidfile.read_text().strip(), deadline
    )
    return int(pidfile.read_text().strip())


def _server(directory: Path, port: int, *extra: str, config: Path | None = None) -> int:
    """Start one daemonized ``redis-server``; return its PID (from its pidfile)."""
    directory.mkdir(parents=True, exist_ok=True)
    pidfile = directory / f"{port}.pid"
    pidfile.unlink(missing_ok=True)
    args = ["redis-server"] + ([str(config)] if config else [])
    args += [
        "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
        "--pidfile", str(pidfile), "--logfile", str(directory / f"{port}.log"),
        "--dir", str(directory), "--save", "", "--appendonly", "no",
        *extra,
    ]  # fmt: skip
    subprocess.run(args, check=True, capture_output=True, timeout=10)
    return _pid(pidfile, time.monotonic() + 10)


@dataclass
class Cluster:
    """A running cluster: ``masters[i]`` is replicated by ``replicas[i]``."""

    masters: list[int]
    replicas: list[int]
    pids: dict[int, int] = field(default_factory=dict)  # port -> PID

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.masters)
        return f"redis+cluster://{hosts}/"

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash, not a shutdown: nothing is saved or handed over)."""
        os.kill(self.pids[port], signal.SIGKILL)

    def master_of_slot(self, slot: int) -> int:
        """The port that serves ``slot`` now, as the cluster itself says."""
        for port in self.masters + self.replicas:
            try:
                nodes = _cli(port, "CLUSTER", "NODES", timeout=2)
            except (OSError, subprocess.SubprocessError):
                continue
            if nodes:
                return _owner_from_nodes(nodes, slot)
        raise RuntimeError("no cluster node answers")

    def stop(self) -> None:
        stop_pids(list(self.pids.values()))


def _owner_from_nodes(nodes: str, slot: int) -> int:
    for line in nodes.splitlines():
        parts = line.split()
        if len(parts) < 9 or "master" not in parts[2] or "fail" in parts[2]:
            continue
        for span in parts[8:]:
            if span.startswith("["):
                continue
            low, _, high = span.partition("-")
            if int(low) <= slot <= int(high or low):
                return int(parts[1].split("@")[0].rsplit(":", 1)[1])
    raise RuntimeError(f"no master serves slot {slot}")


def start_cluster(
    directory: str | os.PathLike[str],
    *,
    masters: int = 3,
    node_timeout_ms: int = 2000,
    taken: set[int] | None = None,
    extra: tuple[str, ...] = (),
) -> Cluster:
    """``masters`` masters with one replica each; returns once the cluster says ok.

    ``extra`` goes on every node's command line (``("--maxmemory", "600mb")``).
    """
    root = Path(directory).resolve()
    taken = taken if taken is not None else set()
    deadline = time.monotonic() + 30
    ports = [_free_port(taken) for _ in range(2 * masters)]
    bus = {p: _free_port(taken) for p in ports}
    cluster = Cluster(masters=ports[:masters], replicas=ports[masters:])
    try:
        for port in ports:
            cluster.pids[port] = _server(
                root / f"node-{port}", port,
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-port", str(bus[port]),
                # A replica may take over however long it was cut off (tests kill masters).
                "--cluster-replica-validity-factor", "0",
                # The other shards keep serving while one is between masters.
                "--cluster-require-full-coverage", "no",
                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                *extra,
            )  # fmt: skip
        for port in ports:
            _wait(f"node {port} to answer", lambda p=port: _cli(p, "PING") == "PONG", deadline)
        step = SLOTS // masters
        for i, port in enumerate(cluster.masters):
            high = SLOTS - 1 if i == masters - 1 else (i + 1) * step - 1
            _cli(port, "CLUSTER", "ADDSLOTSRANGE", str(i * step), str(high))
            _cli(port, "CLUSTER", "SET-CONFIG-EPOCH", str(i + 1))
        first = ports[0]
        for port in ports[1:]:
            _cli(first, "CLUSTER", "MEET", "127.0.0.1", str(port), str(bus[port]))
        ids = {p: _cli(p, "CLUSTER", "MYID") for p in ports}

        def all_known() -> bool:
            return all(_cli(p, "CLUSTER", "NODES").count("\n") + 1 >= len(ports) for p in ports)

        _wait("the nodes to meet", all_known, deadline)
        for master, replica in zip(cluster.masters, cluster.replicas, strict=True):
            _wait(
                f"replica {replica} to follow {master}",
                lambda r=replica, m=master: _cli(r, "CLUSTER", "REPLICATE", ids[m]) == "OK",
                deadline,
            )

        def healthy() -> bool:
            for p in ports:
                if "cluster_state:ok" not in _cli(p, "CLUSTER", "INFO"):
                    return False
            return all("master_link_status:up" in _cli(r, "INFO", "replication")
                       for r in cluster.replicas)  # fmt: skip

        _wait("the cluster to be ok", healthy, deadline)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class SentinelGroup:
    """One master, its replicas and the sentinels that watch it (service ``coatcheck``)."""

    master: int
    replicas: list[int]
    sentinels: list[int]
    pids: dict[int, int] = field(default_factory=dict)

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/{db}"

    def kill(self, port: int) -> None:
        os.kill(self.pids[port], signal.SIGKILL)

    def current_master(self) -> int:
        for port in self.sentinels:
            out = _cli(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE, timeout=2)
            lines = out.splitlines()
            if len(lines) == 2:
                return int(lines[1])
        raise RuntimeError("no sentinel answers")

    def stop(self) -> None:
        stop_pids(list(self.pids.values()))


def start_sentinel_group(
    directory: str | os.PathLike[str],
    *,
    replicas: int = 1,
    sentinels: int = 3,
    down_after_ms: int = 1000,
    taken: set[int] | None = None,
) -> SentinelGroup:
    """A master, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority)."""
    root = Path(directory).resolve()
    taken = taken if taken is not None else set()
    deadline = time.monotonic() + 30
    master = _free_port(taken)
    group = SentinelGroup(
        master=master,
        replicas=[_free_port(taken) for _ in range(replicas)],
        sentinels=[_free_port(taken) for _ in range(sentinels)],
    )
    try:
        group.pids[master] = _server(
            root / f"redis-{master}", master, "--repl-diskless-sync-delay", "0"
        )
        for port in group.replicas:
            group.pids[port] = _server(
                root / f"redis-{port}", port, "--replicaof", "127.0.0.1", str(master),
                "--repl-diskless-sync-delay", "0",
            )  # fmt: skip
        for port in [master, *group.replicas]:
            _wait(f"redis {port} to answer", lambda p=port: _cli(p, "PING") == "PONG", deadline)
        for port in group.replicas:
            _wait(
                f"replica {port} to sync",
                lambda p=port: "master_link_status:up" in _cli(p, "INFO", "replication"),
                deadline,
            )
        quorum = sentinels // 2 + 1
        # Each sentinel is told its peers and the replicas up front (ids chosen here), so
        # none has to wait for the hello and INFO rounds that would find them.
        ids = {port: secrets.token_hex(20) for port in group.sentinels}
        for port in group.sentinels:
            where = root / f"sentinel-{port}"
            where.mkdir(parents=True, exist_ok=True)
            config = where / "sentinel.conf"
            config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {master} {quorum}\n"
                f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} {max(3 * down_after_ms, 3000)}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
                f"sentinel myid {ids[port]}\n"
                + "".join(
                    f"sentinel known-replica {SERVICE} 127.0.0.1 {r}\n" for r in group.replicas
                )
                + "".join(
                    f"sentinel known-sentinel {SERVICE} 127.0.0.1 {p} {ids[p]}\n"
                    for p in group.sentinels
                    if p != port
                )
            )
            group.pids[port] = _server(where, port, "--sentinel", config=config)

        def watched() -> bool:
            for port in group.sentinels:
                info = _cli(port, "SENTINEL", "MASTER", SERVICE)
                lines = info.splitlines()
                found = dict(zip(lines[::2], lines[1::2], strict=False))
                if int(found.get("num-other-sentinels", "0")) < sentinels - 1:
                    return False
                if int(found.get("num-slaves", "0")) < replicas:
                    return False
            return True

        _wait("the sentinels to see each other and the replicas", watched, deadline)
    except BaseException:
        group.stop()
        raise
    return group


def stop_pids(pids: list[int], *, timeout: float = 5.0) -> None:
    """SIGTERM each PID, then SIGKILL what is still there after ``timeout`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("start", "stop", "status"):
        print("usage: _topology.py start|stop|status DIR", file=sys.stderr)
        return 2
    root = Path(argv[2]).resolve()
    pidfile, envfile = root / "pids", root / "services.env"
    pids = [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []
    if argv[1] == "status":
        return 0 if pids and all(_alive(p) for p in pids) and envfile.exists() else 1
    if argv[1] == "stop":
        stop_pids(pids)
        shutil.rmtree(root, ignore_errors=True)
        return 0
    if pids and all(_alive(p) for p in pids) and envfile.exists():
        return 0  # already up
    stop_pids(pids)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    taken: set[int] = set()
    cluster = start_cluster(root / "cluster", taken=taken)
    try:
        group = start_sentinel_group(root / "sentinel", taken=taken)
    except BaseException:
        cluster.stop()
        raise
    pidfile.write_text(" ".join(str(p) for p in [*cluster.pids.values(), *group.pids.values()]))
    envfile.write_text(
        f"COATCHECK_TEST_REDIS_CLUSTER={cluster.url}\n"
        f"COATCHECK_TEST_REDIS_SENTINEL={group.url(15)}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
