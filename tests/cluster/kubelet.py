"""A simulated kubelet: completes the pods Tekton creates, since the test cluster has no nodes.

It registers one Ready Node, binds every unscheduled pod to it and walks the pod through what
a kubelet and Tekton's entrypoint binary would report:

1. init containers (``prepare``, ``place-scripts``, ...) terminate with 0; sidecars run and are
   Ready; the pod is Running;
2. if the first step waits for the ``tekton.dev/ready`` annotation (the downward-API file
   Tekton's entrypoint polls), nothing happens until the controller sets it;
3. steps run one after another. Each ends ``terminated`` with an exit code and the JSON
   termination message the entrypoint writes (``StartedAt``, results, ``ExitCode`` for
   ``onError: continue``, ``Reason: Skipped`` after a failed step, ``TimeoutExceeded``);
4. sidecars stop when the controller swaps their image for the nop image; the pod ends
   Succeeded or Failed.

Pods without ``step-*`` containers (not Tekton's) are bound and stay Running until deleted.

What a step does is decided per step, first match wins:

- an exit code forced with the ``kubelet.ferry.dev/exit-codes`` annotation (on the
  PipelineRun; Tekton copies annotations down to the pod), a JSON object whose keys are
  ``"<pipeline task>/<step>"`` or ``"<step>"``, e.g. ``{"build/test": 1}``; or, for runs
  the test does not create itself, with ``kubelet.force_exit_code(namespace, "build/test", 1)``;
- the step's real script, run as a local process, when the kubelet was created with
  ``run_scripts=True``, ``kubelet.run_scripts_in(namespace)`` was called, or the pod carries
  ``kubelet.ferry.dev/run-scripts: "true"``. The
  script (decoded from ``place-scripts``), literal env values, env from Secrets/ConfigMaps and
  ``workingDir`` are used; paths under ``/tekton/`` and ``/workspace`` are rewritten into a
  directory per pod, so results files work. The container image is ignored: scripts run
  with the host's tools. The clone step is a script like any other: it really fetches the
  run's commit from its repository URL, so a broken clone fails the run (the real Gitea's
  tests, tests/e2e/test_real_gitea.py, rely on it); tests whose forge is fake, with a clone
  URL nothing serves, force it with ``force_exit_code(namespace, "clone", 0)``;
- otherwise exit code 0, without running anything.

Every step container has a log: the real output of a script that ran, or one line saying
it was not run and with which exit code. With a serving certificate the kubelet serves those
logs to the API server (``tests.cluster.kubelet_logs``), so ``kubectl logs [-f]`` and
``pods/log`` work as on a real node.

The pod list is polled rather than watched: the loop is trivially correct, and the local API
server answers a list in a millisecond.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client

from tests.cluster.kubelet_logs import KubeletLogServer, done_marker
from tests.cluster.resources import Kube, KubeError, Obj

NODE_NAME = "ferry-simulated-kubelet"
POD_IP_PREFIX = "10.244.0."
EXIT_CODES_ANNOTATION = "kubelet.ferry.dev/exit-codes"
RUN_SCRIPTS_ANNOTATION = "kubelet.ferry.dev/run-scripts"
READY_ANNOTATION = "tekton.dev/ready"
DOWNWARD_READY_FILE = "/tekton/downward/ready"

POLL_SECONDS = 0.2
# A step that runs longer than this without its own timeout is killed: a hung script must
# not hang the test session.
DEFAULT_STEP_TIMEOUT_SECONDS = 600.0
# How long to wait for the controller to set tekton.dev/ready, or to stop sidecars, before
# giving up on the pod (it is then failed with a message saying why).
CONTROLLER_WAIT_SECONDS = 180.0

_SCRIPT_RE = re.compile(
    r'scriptfile="(?P<path>[^"]+)"\n.*?<< \'_EOF_\'\n(?P<body>[A-Za-z0-9+/=\n]*?)\n_EOF_',
    re.DOTALL,
)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _k8s_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _entrypoint_time(moment: datetime.datetime) -> str:
    # Tekton parses StartedAt with "2006-01-02T15:04:05.000Z07:00".
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration such as ``1h2m3.5s`` or ``300ms``."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|us|µs|ns|h|m|s)", text):
        total += float(number) * units[unit]
    return total


def decode_scripts(pod: Obj) -> dict[str, str]:
    """Script path -> script text, from the ``place-scripts`` init container's shell program."""
    for container in pod["spec"].get("initContainers", []) or []:
        if container["name"] == "place-scripts":
            program = (container.get("args") or ["", ""])[1]
            return {
                match["path"]: base64.b64decode(match["body"].replace("\n", "")).decode()
                for match in _SCRIPT_RE.finditer(program)
            }
    return {}


def entrypoint_args(container: Obj) -> tuple[dict[str, list[str]], list[str]]:
    """Split the entrypoint's ``-flag value`` arguments from the command after ``--``."""
    args = list(container.get("args") or [])
    flags: dict[str, list[str]] = {}
    command: list[str] = []
    boolean_flags = {"-wait_file_content", "-breakpoint_on_failure", "-debug_before_step"}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            command = args[i + 1 :]
            break
        if arg in boolean_flags:
            flags.setdefault(arg, []).append("true")
            i += 1
            continue
        value = args[i + 1] if i + 1 < len(args) else ""
        flags.setdefault(arg.lstrip("-").lstrip("-"), []).append(value)
        i += 2
    entrypoint = flags.get("entrypoint", [])
    return flags, [*entrypoint[:1], *command]


@dataclass
class StepRecord:
    """What happened to one step: for tests that assert a script really ran."""

    namespace: str
    pod: str
    container: str
    exit_code: int
    executed: bool
    log_path: Path | None


@dataclass
class SimulatedKubelet:
    """Start with ``start()``, stop with ``stop()``; one per test session is enough."""

    api_client_factory: Callable[[], kubernetes.client.ApiClient]
    work_dir: Path
    run_scripts: bool = False
    node_name: str = NODE_NAME
    records: list[StepRecord] = field(default_factory=list)
    # For runs a test does not create itself (Ferry's webhook does): outcomes by namespace.
    exit_codes: dict[str, dict[str, int]] = field(default_factory=dict)
    script_namespaces: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    # A serving certificate and key: the kubelet serves its containers' logs to the API
    # server (`pods/log`, `kubectl logs`), see `tests.cluster.kubelet_logs`. None: no logs.
    serving_cert: Path | None = None
    serving_key: Path | None = None
    _logs: KubeletLogServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _workers: dict[str, _PodWorker] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _api: kubernetes.client.ApiClient | None = None
    _next_ip: int = 2

    @property
    def log_path(self) -> Path:
        return self.work_dir / "kubelet.log"

    def force_exit_code(self, namespace: str, step: str, exit_code: int) -> None:
        """Make ``step`` (``"<pipeline task>/<step>"`` or ``"<step>"``) exit with ``exit_code``
        in every pod of ``namespace``; the annotation does the same per run."""
        self.exit_codes.setdefault(namespace, {})[step] = exit_code

    def run_scripts_in(self, namespace: str) -> None:
        """Run the real scripts of every pod in ``namespace``."""
        self.script_namespaces.add(namespace)

    def log(self, message: str) -> None:
        with self._lock, self.log_path.open("a") as log:
            log.write(f"{_k8s_time(_now())} {message}\n")

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._api = self.api_client_factory()
        kube = Kube(self._api)
        port = None
        if self.serving_cert is not None and self.serving_key is not None:
            self._logs = KubeletLogServer(pods_root=self.work_dir / "pods",
                                          cert=self.serving_cert, key=self.serving_key,
                                          pod_alive=self._pod_alive)
            port = self._logs.start()
        self._register_node(kube, log_port=port)
        self._thread = threading.Thread(
            target=self._loop, args=(kube,), name="simulated-kubelet", daemon=True
        )
        self._thread.start()
        self.log(f"started; node {self.node_name}; run_scripts={self.run_scripts}")

    def _pod_alive(self, namespace: str, name: str) -> bool:
        return any(worker.namespace == namespace and worker.name == name and worker.is_alive()
                   for worker in list(self._workers.values()))

    def stop(self) -> None:
        if self._logs is not None:
            self._logs.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for worker in list(self._workers.values()):
            worker.cancel()
        for worker in list(self._workers.values()):
            worker.join(timeout=30)
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

    def _register_node(self, kube: Kube, *, log_port: int | None) -> None:
        node: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": self.node_name},
            },
        }
        try:
            kube.create(node)
        except KubeError as error:
            if error.status != 409:
                raise
        now = _k8s_time(_now())
        kube.merge_patch(
            f"/api/v1/nodes/{self.node_name}/status",
            {
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "simulated kubelet is posting ready status",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        }
                    ],
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    **({"daemonEndpoints": {"kubeletEndpoint": {"Port": log_port}}}
                       if log_port is not None else {}),
                    "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                    "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                }
            },
        )

    def _loop(self, kube: Kube) -> None:
        while not self._stop.is_set():
            try:
                pods = kube.get("/api/v1/pods")["items"]
                present = set()
                for pod in pods:
                    uid = pod["metadata"]["uid"]
                    present.add(uid)
                    node = pod["spec"].get("nodeName")
                    if node and node != self.node_name:
                        continue
                    if pod["metadata"].get("deletionTimestamp"):
                        self._finish_deletion(kube, pod)
                        continue
                    if uid in self._workers:
                        continue
                    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                        continue
                    self._workers[uid] = self._start_worker(kube, pod)
                for uid, worker in list(self._workers.items()):
                    if uid not in present:
                        worker.cancel()
            except Exception:  # keep the kubelet alive; the log says what went wrong
                self.errors.append(traceback.format_exc())
                self.log(f"loop error:\n{traceback.format_exc()}")
            self._stop.wait(POLL_SECONDS)

    def _finish_deletion(self, kube: Kube, pod: Obj) -> None:
        """What a kubelet does for a gracefully deleted pod: kill it, then remove the object.

        Without this the pod would stay, Terminating, forever (Tekton deletes the pods of
        cancelled and timed-out TaskRuns).
        """
        meta = pod["metadata"]
        worker = self._workers.get(meta["uid"])
        if worker is not None:
            worker.cancel()
            worker.join(timeout=30)
        self.log(f"{meta['namespace']}/{meta['name']}: deleted, containers killed")
        try:
            kube.request(
                "DELETE",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": meta["uid"]},
                },
            )
        except KubeError as error:
            if error.status not in (404, 409):
                raise

    def _start_worker(self, kube: Kube, pod: Obj) -> _PodWorker:
        ip = f"{POD_IP_PREFIX}{self._next_ip}"
        self._next_ip = self._next_ip % 250 + 1
        worker = _PodWorker(kubelet=self, kube=kube, pod=pod, pod_ip=ip)
        worker.start()
        return worker


class _PodGoneError(Exception):
    """The pod was deleted (or the kubelet is stopping) while we were working on it."""


class _PodWorker(threading.Thread):
    def __init__(self, *, kubelet: SimulatedKubelet, kube: Kube, pod: Obj, pod_ip: str) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"kubelet-{meta['namespace']}/{meta['name']}", daemon=True)
        self.kubelet = kubelet
        self.kube = kube
        self.pod = pod
        self.pod_ip = pod_ip
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        self.root = kubelet.work_dir / "pods" / self.namespace / self.name
        self._cancelled = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self.started = _now()
        # Tekton stops a sidecar by swapping its image for the nop image: remember the first.
        self.original_images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}

    # --- plumbing ----------------------------------------------------------------------

    def cancel(self) -> None:
        self._cancelled.set()
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise _PodGoneError

    def _patch_status(self, status: Obj) -> None:
        self._check()
        try:
            self.kube.merge_patch(f"{self.path}/status", {"status": status})
        except KubeError as error:
            if error.status == 404:
                raise _PodGoneError from None
            raise

    def _refresh(self) -> Obj:
        self._check()
        try:
            self.pod = self.kube.get(self.path)
        except KubeError as error:
            if error.status == 404:
                raise _PodGoneError from None
            raise
        return self.pod

    def _wait_for(self, predicate: Callable[[Obj], bool], what: str) -> bool:
        deadline = time.monotonic() + CONTROLLER_WAIT_SECONDS
        while time.monotonic() < deadline:
            if predicate(self._refresh()):
                return True
            self._cancelled.wait(POLL_SECONDS)
        self.kubelet.log(f"{self.namespace}/{self.name}: gave up waiting for {what}")
        return False

    def run(self) -> None:
        try:
            self._run()
        except _PodGoneError:
            self.kubelet.log(f"{self.namespace}/{self.name}: pod deleted, stopped")
        except Exception:
            self.kubelet.errors.append(traceback.format_exc())
            self.kubelet.log(f"{self.namespace}/{self.name}: error:\n{traceback.format_exc()}")
        finally:
            self.cancel()

    # --- the pod's life ----------------------------------------------------------------

    def _run(self) -> None:
        kubelet = self.kubelet
        kubelet.log(f"{self.namespace}/{self.name}: binding to {kubelet.node_name}")
        try:
            self.kube.request(
                "POST",
                f"{self.path}/binding",
                body={
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": self.name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": kubelet.node_name},
                },
            )
        except KubeError as error:
            if error.status == 404:
                raise _PodGoneError from None
            raise
        spec = self.pod["spec"]
        containers: list[Obj] = spec.get("containers", [])
        steps = [c for c in containers if c["name"].startswith("step-")]
        others = [c for c in containers if not c["name"].startswith("step-")]
        now = _k8s_time(_now())
        self.init_statuses = [
            self._terminated(c, exit_code=0, started=now, finished=now)
            for c in spec.get("initContainers", []) or []
        ]
        self.statuses: dict[str, Obj] = {}
        for container in steps:
            self.statuses[container["name"]] = self._running(container, ready=False, since=now)
        for container in others:
            self.statuses[container["name"]] = self._running(container, ready=True, since=now)
        self._publish(phase="Running")
        if not steps:
            return  # not a Tekton pod: it runs until it is deleted, like a service

        if DOWNWARD_READY_FILE in entrypoint_args(steps[0])[0].get("wait_file", []):
            ready = self._wait_for(
                lambda pod: pod["metadata"].get("annotations", {}).get(READY_ANNOTATION) == "READY",
                f"the {READY_ANNOTATION} annotation",
            )
            if not ready:
                self._publish(phase="Failed", message="tekton.dev/ready was never set")
                return

        annotations = self.pod["metadata"].get("annotations", {}) or {}
        forced = {
            **kubelet.exit_codes.get(self.namespace, {}),
            **_forced_exit_codes(annotations.get(EXIT_CODES_ANNOTATION, "")),
        }
        run_scripts = (
            kubelet.run_scripts
            or self.namespace in kubelet.script_namespaces
            or annotations.get(RUN_SCRIPTS_ANNOTATION) == "true"
        )
        scripts = decode_scripts(self.pod) if run_scripts else {}
        task = self.pod["metadata"].get("labels", {}).get("tekton.dev/pipelineTask", "")

        failed = False
        for container in steps:
            self._check()
            step = container["name"].removeprefix("step-")
            flags, _ = entrypoint_args(container)
            started = _now()
            message: list[Obj] = [
                {"key": "StartedAt", "value": _entrypoint_time(started), "type": 3}
            ]
            executed = False
            log_path = None
            if failed:
                exit_code, container_code = 1, 1
                message.append({"key": "Reason", "value": "Skipped", "type": 3})
            else:
                code = forced.get(f"{task}/{step}", forced.get(step))
                timed_out = False
                if code is None and run_scripts:
                    code, timed_out, log_path = self._execute(container, flags, scripts)
                    executed = True
                exit_code = code or 0
                container_code = exit_code
                if not executed:
                    self._note_in_log(container["name"], f"simulated kubelet: {container['name']} "
                                      f"was not run; its exit code is {exit_code}\n")
                if timed_out:
                    message.append({"key": "Reason", "value": "TimeoutExceeded", "type": 3})
                    container_code = exit_code = 1
                elif exit_code != 0 and flags.get("on_error") == ["continue"]:
                    message.append({"key": "ExitCode", "value": str(exit_code), "type": 3})
                    container_code = 0
                message.extend(self._results(flags))
                failed = container_code != 0
            kubelet.records.append(
                StepRecord(
                    self.namespace, self.name, container["name"], exit_code, executed, log_path
                )
            )
            kubelet.log(f"{self.namespace}/{self.name}: {container['name']} exited {exit_code}")
            self._container_log(container["name"]).parent.mkdir(parents=True, exist_ok=True)
            done_marker(self._container_log(container["name"])).touch()
            self.statuses[container["name"]] = self._terminated(
                container,
                exit_code=container_code,
                started=_k8s_time(started),
                finished=_k8s_time(_now()),
                message=json.dumps(message),
            )
            self._publish(phase="Running")

        if others:
            # Tekton stops sidecars by replacing their image with its nop image.
            names = {c["name"] for c in others}

            def sidecars_stopped(pod: Obj) -> bool:
                images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
                return all(images[n] != self.original_images[n] for n in names)

            self._wait_for(sidecars_stopped, "the controller to stop the sidecars")
            now = _k8s_time(_now())
            for container in others:
                self.statuses[container["name"]] = self._terminated(
                    container, exit_code=0, started=now, finished=now
                )
        self._publish(phase="Failed" if failed else "Succeeded")

    def _container_log(self, container: str) -> Path:
        return self.root / "logs" / f"{container}.log"

    def _note_in_log(self, container: str, text: str) -> None:
        path = self._container_log(container)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as log:
            log.write(text.encode())

    # --- statuses ----------------------------------------------------------------------

    def _running(self, container: Obj, *, ready: bool, since: str) -> Obj:
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": f"simulated://{container['image']}",
            "containerID": f"simulated://{self.namespace}/{self.name}/{container['name']}",
            "ready": ready,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": since}},
        }

    def _terminated(
        self, container: Obj, *, exit_code: int, started: str, finished: str, message: str = ""
    ) -> Obj:
        terminated: Obj = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": started,
            "finishedAt": finished,
            "containerID": f"simulated://{self.namespace}/{self.name}/{container['name']}",
        }
        if message:
            terminated["message"] = message
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": f"simulated://{container['image']}",
            "containerID": terminated["containerID"],
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"terminated": terminated},
        }

    def _publish(self, *, phase: str, message: str = "") -> None:
        now = _k8s_time(_now())
        running = phase == "Running"
        statuses = list(self.statuses.values())
        all_ready = running and all(s["ready"] for s in statuses)
        done_reason = "PodCompleted" if not running else None

        def condition(kind: str, status: bool, reason: str | None = None) -> Obj:
            cond: Obj = {
                "type": kind,
                "status": "True" if status else "False",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            if reason:
                cond["reason"] = reason
            return cond

        status: Obj = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": _k8s_time(self.started),
            "qosClass": "BestEffort",
            "conditions": [
                condition("PodReadyToStartContainers", True),
                condition("Initialized", True),
                condition(
                    "Ready", all_ready, done_reason or (None if all_ready else "ContainersNotReady")
                ),
                condition(
                    "ContainersReady",
                    all_ready,
                    done_reason or (None if all_ready else "ContainersNotReady"),
                ),
                condition("PodScheduled", True),
            ],
            "initContainerStatuses": self.init_statuses,
            "containerStatuses": statuses,
        }
        if message:
            status["message"] = message
        self._patch_status(status)

    # --- running a step for real -------------------------------------------------------

    def _local(self, text: str) -> str:
        """Rewrite container paths into this pod's directory."""
        return text.replace("/tekton/", f"{self.root}/tekton/").replace(
            "/workspace", f"{self.root}/workspace"
        )

    def _results(self, flags: dict[str, list[str]]) -> list[Obj]:
        names = [n for n in ",".join(flags.get("results", [])).split(",") if n]
        results = []
        for name in names:
            path = self.root / "tekton" / "results" / name
            if path.is_file():
                results.append({"key": name, "value": path.read_text(), "type": 1})
        return results

    def _env(self, container: Obj) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.root / "tekton" / "home"),
            "HOSTNAME": self.name,
        }
        for source in container.get("envFrom", []) or []:
            for key, value in self._lookup_all(source).items():
                env[source.get("prefix", "") + key] = value
        for var in container.get("env", []) or []:
            if "value" in var:
                env[var["name"]] = self._local(var["value"])
            elif var.get("valueFrom"):
                looked_up = self._lookup(var["valueFrom"])
                if looked_up is not None:
                    env[var["name"]] = looked_up
        return env

    def _lookup(self, source: Obj) -> str | None:
        for kind, key in (("secretKeyRef", "secrets"), ("configMapKeyRef", "configmaps")):
            ref = source.get(kind)
            if ref:
                try:
                    obj = self.kube.get(f"/api/v1/namespaces/{self.namespace}/{key}/{ref['name']}")
                except KubeError:
                    return None
                data = obj.get("data", {}) or {}
                if ref["key"] not in data:
                    return None
                value = data[ref["key"]]
                return base64.b64decode(value).decode() if key == "secrets" else str(value)
        field_path = (source.get("fieldRef") or {}).get("fieldPath", "")
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "spec.nodeName": self.kubelet.node_name,
            "status.podIP": self.pod_ip,
            "status.hostIP": "127.0.0.1",
            "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", ""),
        }
        return simple.get(field_path)

    def _lookup_all(self, source: Obj) -> dict[str, str]:
        for kind, key in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
            ref = source.get(kind)
            if ref:
                try:
                    obj = self.kube.get(f"/api/v1/namespaces/{self.namespace}/{key}/{ref['name']}")
                except KubeError:
                    return {}
                data = obj.get("data", {}) or {}
                if key == "secrets":
                    return {k: base64.b64decode(v).decode() for k, v in data.items()}
                return {k: str(v) for k, v in data.items()}
        return {}

    def _execute(
        self, container: Obj, flags: dict[str, list[str]], scripts: dict[str, str]
    ) -> tuple[int, bool, Path]:
        for sub in ("results", "home", "scripts", "steps"):
            (self.root / "tekton" / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "workspace").mkdir(parents=True, exist_ok=True)
        _, command = entrypoint_args(container)
        if command and command[0] in scripts:
            script_path = Path(self._local(command[0]))
            script_path.write_text(self._local(scripts[command[0]]))
            script_path.chmod(0o700)
            argv = [str(script_path), *command[1:]]
        else:
            argv = [self._local(part) for part in command]
        working_dir = Path(self._local(container.get("workingDir") or "/workspace"))
        working_dir.mkdir(parents=True, exist_ok=True)
        timeout = DEFAULT_STEP_TIMEOUT_SECONDS
        if flags.get("timeout"):
            timeout = parse_go_duration(flags["timeout"][0]) or timeout
        log_path = self._container_log(container["name"])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.kubelet.log(f"{self.namespace}/{self.name}: running {argv} in {working_dir}")
        timed_out = False
        with log_path.open("wb") as log:
            try:
                self._process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=working_dir,
                    env=self._env(container),
                    start_new_session=True,
                )
            except OSError as error:  # no such interpreter, not executable, ...
                log.write(f"simulated kubelet: cannot run {argv}: {error}\n".encode())
                return 127, False, log_path
            try:
                code = self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                code = self._process.wait()
                timed_out = True
            finally:
                process, self._process = self._process, None
                if process.poll() is None:  # cancelled meanwhile
                    process.wait()
        self._check()
        # A shell reports death by signal N as 128+N; Popen as -N.
        return (128 - code if code < 0 else code), timed_out, log_path


def _forced_exit_codes(text: str) -> dict[str, int]:
    if not text:
        return {}
    data: Any = json.loads(text)
    return {str(key): int(value) for key, value in data.items()}
