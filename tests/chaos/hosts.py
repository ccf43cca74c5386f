"""Hosts of the chaos harness: one network namespace per `qdrant` process on a private bridge,
and the fault primitives that act on them (kill -9 / restart, SIGSTOP / SIGCONT, nft partitions,
tbf slow links, libfaketime clock offsets).

Everything here runs inside the private network, mount and PID namespaces that run.sh creates
with `unshare`: the bridge lives in that private network namespace, /run/netns is a tmpfs of the
private mount namespace, and when the harness (PID 1 there) exits, the kernel kills every process
it started. `Net.setup` refuses to run anywhere else, so the host's network is never touched.
"""

import os
import signal
import subprocess
import time

import client

SUBNET = "10.88.0"
BRIDGE = "br-chaos"
HARNESS_IP = f"{SUBNET}.1"
P2P_PORT = 6335
FAKETIME_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
)


class HarnessError(RuntimeError):
    """The harness itself could not do what it needed (not a finding about the node)."""


def sh(*cmd, stdin=None, timeout=15):
    """Runs a command, raising HarnessError with its stderr on failure."""
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"timed out: {' '.join(cmd)}") from e
    if r.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def faketime_lib():
    for path in FAKETIME_LIBS:
        if os.path.exists(path):
            return path
    return None


class Net:
    """The private bridge and the per-node namespaces on it."""

    def __init__(self):
        self.hosts = {}  # index -> namespace name

    @staticmethod
    def setup():
        """Prepares the private network namespace (once per harness process)."""
        if os.environ.get("CHAOS_IN_NS") != "1" or os.getpid() != 1:
            raise HarnessError("chaos.py must run through tests/chaos/run.sh (inside unshare "
                               "--net --mount --pid); refusing to touch this network namespace")
        links = sh("ip", "-o", "link", "show").splitlines()
        if any(": lo:" not in line for line in links):
            raise HarnessError("not a private network namespace (it has other interfaces): " +
                               "; ".join(links))
        os.makedirs("/run/netns", exist_ok=True)
        # A tmpfs of our private mount namespace: named namespaces never appear on the host.
        sh("mount", "-t", "tmpfs", "chaos-netns", "/run/netns")
        sh("ip", "link", "set", "lo", "up")
        # Clients open a connection per request: let them reuse TIME_WAIT ports (this
        # namespace only).
        sh("sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1")
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{HARNESS_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")

    def add_host(self, i):
        """Namespace `c{i}` with eth0 = 10.88.0.(10+i), its veth peer `vh{i}` on the bridge."""
        ns, ip = f"c{i}", f"{SUBNET}.{10 + i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"vh{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", f"vh{i}", "master", BRIDGE, "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.hosts[i] = ns
        return ns, ip

    def remove_host(self, i):
        ns = self.hosts.pop(i, None)
        if ns is None:
            return
        subprocess.run(["ip", "link", "del", f"vh{i}"], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def teardown(self):
        for i in list(self.hosts):
            self.remove_host(i)


class Node:
    """One `qdrant` process in its own namespace; restarts reuse the same arguments and storage."""

    def __init__(self, i, ns, ip, run_dir, binary, env_extra):
        self.i, self.ns, self.ip, self.binary = i, ns, ip, binary
        self.dir = os.path.join(run_dir, f"node{i}")
        os.makedirs(self.dir, exist_ok=True)
        self.storage = os.path.join(self.dir, "storage")
        self.log_path = os.path.join(self.dir, "node.log")
        self.clock_file = os.path.join(self.dir, "faketime")
        self.uri = f"http://{ip}:{P2P_PORT}"
        self.env_extra = dict(env_extra)
        self.args = None
        self.proc = None
        self.paused = False
        self.killed = False   # stopped on purpose (a dead process otherwise is a crash)
        self.clock_offset = 0
        self.set_clock(0)

    def env(self):
        env = {
            "QDRANT__CLUSTER__ENABLED": "true",
            "QDRANT__CLUSTER__P2P__PORT": str(P2P_PORT),
            "QDRANT__SERVICE__HOST": self.ip,
            "QDRANT__SERVICE__HTTP_PORT": str(client.PORT),
            "QDRANT__SERVICE__GRPC_PORT": "6334",
            "QDRANT__STORAGE__STORAGE_PATH": self.storage,
            "QDRANT__LOG_LEVEL": "info",
            "QDRANT__TELEMETRY_DISABLED": "true",
        }
        lib = faketime_lib()
        if lib:
            # The harness rewrites clock_file to jump this node's wall clock; CLOCK_MONOTONIC
            # stays real so timers, Raft elections and tokio's Instant are not disturbed.
            env.update({
                "LD_PRELOAD": lib,
                "FAKETIME_TIMESTAMP_FILE": self.clock_file,
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "FAKETIME_CACHE_DURATION": "1",
            })
        env.update(self.env_extra)
        return env

    def spawn(self, args):
        if self.running():
            raise HarnessError(f"node {self.i} already running")
        self.args = list(args)
        with open(self.log_path, "a") as log:
            log.write(f"\n=== chaos: start {' '.join(self.args)} at {time.time():.3f}\n")
            log.flush()
            # `ip netns exec` and `env` both exec, so proc.pid is the qdrant process itself;
            # LD_PRELOAD is set by `env` so only qdrant gets libfaketime.
            cmd = ["ip", "netns", "exec", self.ns, "env"]
            cmd += [f"{k}={v}" for k, v in self.env().items()]
            cmd += [self.binary] + self.args
            self.proc = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.paused = False
        self.killed = False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def crashed(self):
        """The exit code if the process ended although nobody stopped it, else None."""
        if self.proc is None or self.killed:
            return None
        return self.proc.poll()

    def kill9(self):
        """kill -9 (works on a stopped process too)."""
        self.killed = True
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired as e:
                raise HarnessError(f"node {self.i} did not die after SIGKILL") from e
        self.paused = False

    def restart(self):
        self.kill9()
        self.spawn(self.args)

    def pause(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.running() and self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def set_clock(self, offset_s):
        """Offsets this node's wall clock from real time by `offset_s` seconds (libfaketime reads
        the file again within FAKETIME_CACHE_DURATION)."""
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{'+' if offset_s >= 0 else '-'}{abs(int(offset_s))}\n")
        os.replace(tmp, self.clock_file)
        self.clock_offset = int(offset_s)

    def block(self, ips):
        """Drops every packet between this node and `ips` (both directions, replacing the last
        rule set). Clients on the harness address still reach it, as in a real partition seen
        from one side."""
        addrs = ", ".join(ips)
        rules = (
            "table inet chaos\n"
            "delete table inet chaos\n"
            "table inet chaos {\n"
            f"  chain input {{ type filter hook input priority 0; policy accept; ip saddr {{ {addrs} }} drop; }}\n"
            f"  chain output {{ type filter hook output priority 0; policy accept; ip daddr {{ {addrs} }} drop; }}\n"
            "}\n"
        )
        sh("ip", "netns", "exec", self.ns, "nft", "-f", "-", stdin=rules)

    def unblock(self):
        sh("ip", "netns", "exec", self.ns, "nft", "-f", "-",
           stdin="table inet chaos\ndelete table inet chaos\n")

    def slow(self, rate_kbit, latency_ms):
        """A slow link both ways: token-bucket rate limits with a deep queue (netem is not in this
        kernel), on the node's eth0 (its egress) and on its bridge port (its ingress)."""
        spec = ["tbf", "rate", f"{rate_kbit}kbit", "burst", "4kb", "latency", f"{latency_ms}ms"]
        sh("ip", "netns", "exec", self.ns, "tc", "qdisc", "replace", "dev", "eth0", "root", *spec)
        sh("tc", "qdisc", "replace", "dev", f"vh{self.i}", "root", *spec)

    def unslow(self):
        subprocess.run(["ip", "netns", "exec", self.ns, "tc", "qdisc", "del", "dev", "eth0", "root"],
                       capture_output=True, timeout=10)
        subprocess.run(["tc", "qdisc", "del", "dev", f"vh{self.i}", "root"],
                       capture_output=True, timeout=10)

    def heal(self):
        """Every fault off: running, unpaused, connected, full speed, real clock."""
        self.resume()
        self.unblock()
        self.unslow()
        if self.clock_offset:
            self.set_clock(0)
        if self.args is not None and not self.running():
            self.spawn(self.args)

    def ready(self):
        return client.call(self.ip, "GET", "/readyz", timeout=2).outcome == client.OK

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            if not self.running():
                raise HarnessError(f"node {self.i} exited during start-up; log: {self.log_path}")
            time.sleep(0.2)
        raise HarnessError(f"node {self.i} not ready in {timeout}s; log: {self.log_path}")

    def stop(self):
        try:
            self.kill9()
        except HarnessError:
            pass

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""
