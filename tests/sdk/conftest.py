"""Processes for the SDK tests: pice-sim as the cloud LLM, pice-edge-agent (sim backend) as the
edge, and pice-gateway in front, each a real process on 127.0.0.1 started from PICE_BIN_DIR
(target/debug by default; tests/sdk/run.sh builds it). Every process is stopped at the end.
A second gateway (`recording_stack`) has a RecordingCloud (recording_cloud.py) as its cloud, to
see what the gateway sends the cloud and to have the cloud answer with tools, choices and
log-probabilities that pice-sim does not write."""

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

import httpx
import openai
import pytest

from recording_cloud import RecordingCloud

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("PICE_BIN_DIR", ROOT / "target" / "debug"))
API_KEY = "sk-pice-sdk-test"
POOL = "assistant"
CLOUD_MODEL = "llama-3.1-70b-instruct"


class Process:
    """A started binary; its stderr goes to a log file, kept for failure reports."""

    def __init__(self, name, args, log_dir):
        self.name = name
        self.log = open(log_dir / f"{name}.log", "w+")
        self.proc = subprocess.Popen(
            [str(BIN_DIR / args[0]), *args[1:]],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def first_line(self):
        """The first stdout line (`listening on ADDR` for pice-sim and pice-gateway); empty
        when the process exits without printing one."""
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} did not start: {self.log_text()}")
        return line.strip()

    def log_field(self, message, field, timeout=30):
        """A field of the first JSON log line with `message` (the edge agent logs its ports)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                try:
                    fields = json.loads(line)["fields"]
                except (ValueError, KeyError):
                    continue
                if fields.get("message") == message:
                    return fields[field]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not log {message!r}: {self.log_text()}")

    def log_text(self):
        self.log.flush()
        return pathlib.Path(self.log.name).read_text()

    def kill(self):
        """SIGKILL: the process dies at once, mid-request if it has one."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Stack:
    """A cloud, `edges` edge agents and a gateway; `cloud_down` points the gateway at nothing;
    `recording` makes the cloud a RecordingCloud in this process (`stack.recorder`), not pice-sim."""

    def __init__(self, log_dir, edges=2, cloud_down=False, mode="auto", recording=False):
        self.processes = []
        self.log_dir = log_dir
        self.recorder = None
        try:
            if recording:
                self.recorder = RecordingCloud(CLOUD_MODEL)
                cloud_url = self.recorder.url
            else:
                cloud_url = closed_port_url() if cloud_down else self._cloud()
            self.edges = [self._edge(i) for i in range(edges)]
            self.gateway_url = self._gateway(cloud_url, mode)
        except Exception:
            self.stop()
            raise

    def _start(self, name, args):
        process = Process(name, args, self.log_dir)
        self.processes.append(process)
        return process

    def _cloud(self):
        cloud = self._start("cloud", ["pice-sim", "--profile", "cloud-llama70b-h100x4", "--listen", "127.0.0.1:0"])
        return "http://" + cloud.first_line().removeprefix("listening on ")

    def _edge(self, index):
        args = ["pice-edge-agent", "--backend", "sim", "--sim-profile", "edge-qwen1.5b-jetson-orin",
                "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json",
                "--seed", str(index)]
        agent = self._start(f"edge-{index}", args)
        agent.address = agent.log_field("edge agent serving", "grpc")
        return agent

    def _gateway(self, cloud_url, mode):
        config = {
            "pool": POOL,
            "port": 8080,
            "cloud": {"url": cloud_url, "model": CLOUD_MODEL},
            "edge": [],
            "routing": {
                "mode": mode,
                "sketch": {"maxPoints": 4, "wordsPerPoint": 6},
                "expansion": {"maxTokensPerPoint": 60, "deadlineMs": 4000},
                "fallback": {"edgeRetries": 1, "toCloud": True},
            },
        }
        config_file = self.log_dir / "gateway.json"
        config_file.write_text(json.dumps(config))
        keys_file = self.log_dir / "api-keys"
        keys_file.write_text(f"# SDK test key\n{API_KEY}\n")
        args = ["pice-gateway", f"--config={config_file}", "--listen=127.0.0.1:0",
                "--edge-endpoints", ",".join(edge.address for edge in self.edges),
                "--api-keys-file", str(keys_file), "--max-body-bytes", "65536",
                "--load-interval-ms", "200"]
        gateway = self._start("gateway", args)
        self.gateway = gateway
        return "http://" + gateway.first_line().removeprefix("listening on ")

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.gateway_url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the gateway did not become ready: {self.gateway.log_text()}")

    def client(self, **options):
        return openai.OpenAI(base_url=f"{self.gateway_url}/v1", api_key=API_KEY, max_retries=0, timeout=60, **options)

    def metric(self, series):
        """The value of a `/metrics` sample, 0 when absent."""
        for line in httpx.get(f"{self.gateway_url}/metrics").text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self):
        for process in reversed(self.processes):
            process.stop()
        if self.recorder is not None:
            self.recorder.stop()


@contextlib.contextmanager
def ready_stack(**options):
    """A Stack (with `options`) in a log directory of its own, ready; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="pice-sdk-") as log_dir:
        stack = Stack(pathlib.Path(log_dir), **options)
        try:
            stack.wait_ready()
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="session")
def stack():
    """The shared stack: cloud, two edge agents, gateway in auto mode, ready."""
    with ready_stack() as stack:
        yield stack


@pytest.fixture(scope="session")
def recording_stack():
    """A second gateway, in auto mode, whose cloud is a RecordingCloud (`recording_stack.recorder`)
    and with one edge agent: the command line has no way to run outside Kubernetes without an edge
    endpoint, and auto mode is ready once an edge is."""
    with ready_stack(edges=1, recording=True) as stack:
        yield stack


@pytest.fixture
def own_stack():
    """A stack of one's own, for tests that kill or starve its parts."""
    stacks = []
    with tempfile.TemporaryDirectory(prefix="pice-sdk-") as log_dir:

        def start(**options):
            directory = pathlib.Path(log_dir) / str(len(stacks))
            directory.mkdir()
            stack = Stack(directory, **options)
            stacks.append(stack)
            return stack

        try:
            yield start
        finally:
            for stack in stacks:
                stack.stop()
