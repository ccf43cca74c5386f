"""The 3-container cluster test: three containers of the node image run the operator-rendered
StatefulSet pod `<name>-<k>` (k8s_pod.py), on a private Docker network where each is reachable as
`<name>-<k>.<name>-headless[.<ns>[.svc.cluster.local]]` (the headless Service's DNS names).

  1. all three start together (podManagementPolicy: Parallel); every peer agrees on `GET /cluster`
     (same leader, 3 peers, the URIs the operator rendered);
  2. a sharded, replicated collection (6 shards x 2 replicas) is created, written and searched
     through every container;
  3. a follower is `docker kill`ed: the other two keep a leader and keep taking writes; it restarts
     on its volume and catches up;
  4. the leader is partitioned away (`docker network disconnect`): the majority elects a leader and
     keeps taking writes and structure changes, the minority refuses structure changes; the network
     heals and the cluster converges;
  5. nothing acknowledged is lost: every acknowledged point is on every node, replicas agree.

Networking: the p2p network is `--internal`; each container also sits on a "client" network with
inter-container traffic disabled, which only carries the REST/gRPC ports published on 127.0.0.1 for
this test. So a disconnected container is cut off from its peers but still observable.

The cluster test is marked `cluster` (run.sh --cluster): it needs the node's cluster mode. The
network test at the end checks the harness itself with any node build and runs by default.
"""

import os
import subprocess
import time

import pytest
import requests

from container_helpers import (DIM, Rest, assert_points_intact, docker, logs, make_points,
                               published_url, vector_for, wait_until)
from k8s_pod import PodRunner, rendered_statefulset


SIZE = 3
COLLECTION = "chaos"
AGREE_TIMEOUT = 90
RECOVER_TIMEOUT = 180


def norm_uri(uri):
    return uri.rstrip("/")


class Cluster:
    def __init__(self, resources, image, tmp_path):
        self.res = resources
        sts, cm, self.source = rendered_statefulset()
        self.runner = PodRunner(sts, cm, image, tmp_path)
        self.p2p = resources.network("p2p", internal=True)
        self.client = resources.network("client", icc=False)
        self.containers = []
        for k in range(SIZE):
            volume = resources.volume(f"storage-{k}")
            opts, args = self.runner.create_args(k, volume)
            name = resources.create_container(
                self.runner.pod(k), image, args,
                ["--network", self.client, "-p", "127.0.0.1::6333", "-p", "127.0.0.1::6334", *opts])
            self.containers.append(name)
            self.connect(k)
        self._rest = {}
        self.expected_uris = {self.uri(k) for k in range(SIZE)}

    def uri(self, k):
        scheme = "http"
        return f"{scheme}://{self.runner.pod(k)}.{self.runner.headless}.{self.runner.namespace}:6335"

    # --- docker actions ---
    def connect(self, k):
        aliases = []
        for a in self.runner.aliases(k):
            aliases += ["--alias", a]
        docker("network", "connect", *aliases, self.p2p, self.containers[k])

    def disconnect(self, k):
        docker("network", "disconnect", self.p2p, self.containers[k])

    def start(self, *ks):
        for k in ks:
            docker("start", self.containers[k])
        for k in ks:
            self._rest[k] = Rest(published_url(self.containers[k]))

    def kill(self, k):
        docker("kill", "--signal", "KILL", self.containers[k])
        self._rest.pop(k, None)

    def rest(self, k):
        return self._rest[k]

    # --- observations ---
    def cluster_info(self, k):
        return self.rest(k).cluster()

    def agreement(self, members):
        """Every member reports cluster mode, the same live leader among `members`, all 3 peers with
        the rendered URIs. Returns (leader peer id, {ordinal: peer id})."""
        infos = {k: self.cluster_info(k) for k in members}
        leaders = set()
        ids = {}
        for k, info in infos.items():
            assert info.get("status") == "enabled", (k, info)
            leaders.add(info["raft_info"]["leader"])
            ids[k] = info["peer_id"]
            uris = {norm_uri(p["uri"]) for p in info["peers"].values()}
            if uris != self.expected_uris:
                return None
        if len(leaders) != 1 or None in leaders:
            return None
        leader = leaders.pop()
        if leader not in ids.values():
            return None  # a leader outside the members (e.g. on the far side of a partition)
        return leader, ids

    def wait_agreement(self, members, timeout=AGREE_TIMEOUT):
        return wait_until(lambda: self.agreement(members), timeout, interval=0.5,
                          what=f"cluster agreement among pods {members}")

    def replica_states(self, k, collection=COLLECTION):
        info = self.rest(k).ok("GET", f"/collections/{collection}/cluster")
        return info

    def replicas_settled(self, members, collection=COLLECTION, shards=6, rf=2):
        """Every shard has `rf` Active replicas, no transfers, and the replicas of a shard hold the
        same number of points (as seen from each member's local shards)."""
        counts = {}
        for k in members:
            info = self.replica_states(k, collection)
            if info.get("shard_transfers"):
                return False
            for s in info["local_shards"] + info["remote_shards"]:
                if s["state"] != "Active":
                    return False
            for s in info["local_shards"]:
                counts.setdefault(s["shard_id"], {})[k] = s["points_count"]
        if len(counts) != shards or any(len(v) != rf for v in counts.values()):
            return False
        return all(len(set(v.values())) == 1 for v in counts.values())

    def dump(self):
        return "\n".join(f"----- {c} -----\n{logs(c, 60)}" for c in self.containers)

    def save_logs(self, directory):
        """Writes every container's whole log to `directory` (for a failure's post-mortem)."""
        paths = []
        for k, c in enumerate(self.containers):
            path = f"{directory}/pod-{k}.log"
            with open(path, "w") as f:
                f.write(logs(c, "all"))
            paths.append(path)
        return paths


def write(rest, acked, maybe, ids, tag, deadline_s=45):
    """Upsert `ids` (wait=true) until acknowledged or the deadline; acked ids go into `acked`, the
    ids of every attempt into `maybe` (an unacknowledged write may or may not have happened)."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        for i in ids:
            maybe[i] = tag
        try:
            rest.upsert(COLLECTION, make_points(ids, tag), wait=True, timeout=15)
            for i in ids:
                acked[i] = tag
            return True
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
            time.sleep(0.5)
    raise AssertionError(f"write of {len(ids)} points not acknowledged in {deadline_s}s: {last}")


def write_through(cluster, members, acked, maybe, start, count, tag):
    ids = list(range(start, start + count))
    for n, i in enumerate(range(0, count, 50)):
        k = members[n % len(members)]
        write(cluster.rest(k), acked, maybe, ids[i:i + 50], tag)


def check_reads(cluster, members, acked, maybe, settle=False):
    """Through every member: all acknowledged points are there, counts agree, searches agree.

    With `settle`, first waits until every replica is Active again with equal counts: a write is
    acknowledged once the replicas that missed it are marked Dead through consensus, and the peer
    of such a replica serves it (reads with consistency 1) until it applied that change, as in
    Qdrant. Acknowledged writes must be readable everywhere once the cluster converged."""
    if settle:
        wait_until(lambda: cluster.replicas_settled(members), RECOVER_TIMEOUT, interval=1,
                   what="replicas converged after the writes")
    counts = {}
    for k in members:
        r = cluster.rest(k)
        assert_points_intact(r, COLLECTION, acked)
        counts[k] = r.count(COLLECTION)
        assert len(acked) <= counts[k] <= len(set(acked) | set(maybe)), (k, counts[k], len(acked))
    assert len(set(counts.values())) == 1, f"nodes disagree on the point count: {counts}"
    for probe in sorted(acked)[:: max(1, len(acked) // 5)]:
        results = [[h["id"] for h in cluster.rest(k).search(COLLECTION, vector_for(probe), limit=5, exact=True)]
                   for k in members]
        assert results[0][0] == probe, (probe, results[0])
        assert all(r == results[0] for r in results), (probe, results)


@pytest.fixture
def cluster(request, resources, image, tmp_path):
    c = Cluster(resources, image, tmp_path)
    yield c
    # The pods' whole logs are kept in QDRANT_CT_LOGS=dir when set, and after a failure (default:
    # the test's tmp dir).
    report = getattr(request.node, "rep_call", None)
    failed = report is not None and report.failed
    if failed or os.environ.get("QDRANT_CT_LOGS"):
        directory = os.environ.get("QDRANT_CT_LOGS") or str(tmp_path)
        os.makedirs(directory, exist_ok=True)
        print("pod logs saved:", *c.save_logs(directory))


@pytest.mark.cluster
@pytest.mark.timeout(900)
def test_three_container_cluster_survives_kill_and_partition(cluster, metrics):
    print(f"pod spec from {cluster.source}:\n" + "\n".join(cluster.runner.describe(k) for k in range(SIZE)))
    acked, maybe = {}, {}
    all3 = [0, 1, 2]

    # 1. Parallel start, agreement.
    t0 = time.monotonic()
    cluster.start(*all3)
    try:
        for k in all3:
            wait_until(cluster.rest(k).is_ready, AGREE_TIMEOUT, what=f"pod {k} /readyz")
        leader, ids = cluster.wait_agreement(all3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.dump()}") from None
    metrics["cluster_time_to_healthy_s"] = round(time.monotonic() - t0, 2)
    by_peer = {pid: k for k, pid in ids.items()}
    assert len(by_peer) == SIZE, f"peer ids are not distinct: {ids}"

    # 2. Sharded, replicated collection; write and search through every container.
    cluster.rest(1).create_collection(COLLECTION, DIM, shard_number=6, replication_factor=2,
                                      write_consistency_factor=1)
    wait_until(lambda: all(cluster.rest(k).call("GET", f"/collections/{COLLECTION}").status_code == 200
                           for k in all3), 60, what="the collection on every peer")
    wait_until(lambda: cluster.replicas_settled(all3), 60, what="6 shards x 2 Active replicas")
    write_through(cluster, all3, acked, maybe, 1, 900, "initial")
    check_reads(cluster, all3, acked, maybe, settle=True)

    # 3. Kill a follower: the other two keep a leader and take writes.
    victim = next(k for k in all3 if ids[k] != leader)
    live = [k for k in all3 if k != victim]
    cluster.kill(victim)
    cluster.wait_agreement(live)
    write_through(cluster, live, acked, maybe, 10_001, 300, "during-kill")
    check_reads(cluster, live, acked, maybe)
    t0 = time.monotonic()
    cluster.start(victim)
    wait_until(cluster.rest(victim).is_ready, AGREE_TIMEOUT, what=f"pod {victim} /readyz after restart")
    leader, ids2 = cluster.wait_agreement(all3)
    assert ids2 == ids, f"a restarted pod must keep its peer id: {ids} -> {ids2}"
    wait_until(lambda: cluster.replicas_settled(all3), RECOVER_TIMEOUT, interval=1,
               what="replicas recovered after the kill")
    metrics["cluster_recovery_after_kill_s"] = round(time.monotonic() - t0, 2)
    check_reads(cluster, all3, acked, maybe)

    # 4. Partition the leader away.
    isolated = by_peer[leader]
    majority = [k for k in all3 if k != isolated]
    cluster.disconnect(isolated)
    new_leader, _ = cluster.wait_agreement(majority)
    assert new_leader != leader
    write_through(cluster, majority, acked, maybe, 20_001, 300, "during-partition")
    # Structure changes need a quorum: the majority side has one...
    cluster.rest(majority[0]).create_collection("created_in_partition", DIM, shard_number=2,
                                                replication_factor=2)
    # ...the isolated side has none and must fail with an error, not hang forever.
    try:
        resp = cluster.rest(isolated).call("PUT", "/collections/minority_probe",
                                           {"vectors": {"size": DIM, "distance": "Cosine"}},
                                           params={"timeout": 10}, timeout=60)
    except requests.RequestException as exc:
        raise AssertionError(f"a structure change without quorum hung instead of failing: {exc}") from None
    assert resp.status_code >= 400, f"structure change without quorum answered {resp.status_code}: {resp.text}"
    # A write through the isolated node may succeed (local replicas) or fail; if it is
    # acknowledged, it must survive the heal like any other.
    try:
        cluster.rest(isolated).upsert(COLLECTION, make_points(list(range(30_001, 30_051)), "minority"),
                                      wait=True, timeout=20)
        for i in range(30_001, 30_051):
            acked[i] = "minority"
    except Exception:  # noqa: BLE001 - refusing is allowed
        for i in range(30_001, 30_051):
            maybe[i] = "minority"
    check_reads(cluster, majority, {i: t for i, t in acked.items() if t != "minority"}, {**maybe, **acked})

    # Heal.
    t0 = time.monotonic()
    cluster.connect(isolated)
    cluster.wait_agreement(all3)
    wait_until(lambda: cluster.rest(isolated).call("GET", "/collections/created_in_partition").status_code == 200,
               60, what="the collection created during the partition on the healed pod")
    wait_until(lambda: cluster.replicas_settled(all3), RECOVER_TIMEOUT, interval=1,
               what="replicas converged after the partition healed")
    metrics["cluster_recovery_after_partition_s"] = round(time.monotonic() - t0, 2)

    # 5. Nothing acknowledged is lost, anywhere.
    write_through(cluster, all3, acked, maybe, 40_001, 150, "after-heal")
    check_reads(cluster, all3, acked, maybe, settle=True)


def _tcp(cluster, src, host, port=6333):
    """Can pod `src` open a TCP connection to host:port? (bash /dev/tcp, 3 s limit)"""
    r = subprocess.run(["docker", "exec", cluster.containers[src], "timeout", "3", "bash", "-c",
                        f"exec 3<>/dev/tcp/{host}/{port}"], capture_output=True, text=True, timeout=20)
    return r.returncode == 0


@pytest.mark.timeout(240)
def test_network_emulates_the_statefulset_and_partitions_for_real(resources, image, tmp_path):
    """The harness of the cluster test, checked with any node build (no cluster mode needed): pods
    resolve each other by their headless-Service names, only through the p2p network; a
    `docker network disconnect` really cuts a pod off from its peers (not from the test), and a
    reconnect restores it under the same names."""
    cluster = Cluster(resources, image, tmp_path)
    cluster.start(*range(SIZE))
    for k in range(SIZE):
        wait_until(cluster.rest(k).is_ready, 60, what=f"pod {k} /readyz")
    names = [a for a in cluster.runner.aliases(0)]
    for src in (1, 2):
        for name in names:
            assert _tcp(cluster, src, name), f"pod {src} cannot reach pod 0 as {name}"
    # The client network carries only the published ports: pods cannot use it to reach each other.
    client_ip = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{cluster.client}").IPAddress}}}}',
                       cluster.containers[0])
    assert client_ip and not _tcp(cluster, 1, client_ip), "pods reach each other over the client network"
    cluster.disconnect(0)
    for src in (1, 2):
        assert not _tcp(cluster, src, names[1]), f"pod {src} still reaches the partitioned pod 0"
    assert not _tcp(cluster, 0, f"{cluster.runner.pod(1)}.{cluster.runner.headless}")
    assert cluster.rest(0).is_ready(), "the test must still reach a partitioned pod"
    cluster.connect(0)
    wait_until(lambda: _tcp(cluster, 1, names[1]) and _tcp(cluster, 0, f"{cluster.runner.pod(2)}.{cluster.runner.headless}"),
               30, what="connectivity after the partition healed")
    # A killed pod restarts on its volume with the same name.
    cluster.kill(2)
    assert not _tcp(cluster, 1, f"{cluster.runner.pod(2)}.{cluster.runner.headless}")
    cluster.start(2)
    wait_until(lambda: _tcp(cluster, 1, f"{cluster.runner.pod(2)}.{cluster.runner.headless}"), 30,
               what="pod 2 reachable after its restart")
