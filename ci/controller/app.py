"""The controller process, wired top to bottom: lease, watches, queue, workers, housekeeping.

`run_controller(settings, stop=event)` blocks until `stop` is set (or the lease is lost, after
which the process should exit and be restarted as a standby).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import gc
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import httpx
import structlog

from ci.archive.configured import ArchiveSettings, open_store
from ci.archive.store import LogStore
from ci.controller import admission, pruning
from ci.controller.archiving import Archiver
from ci.controller.leadership import Leadership
from ci.controller.logs import LogTails
from ci.controller.metrics import ControllerMetrics
from ci.controller.posting import Poster
from ci.controller.queueing import KeyedQueue
from ci.controller.retaining import retain
from ci.controller.retrying import Retry
from ci.controller.routing import Key, Routing
from ci.controller.runs import RunKey, RunSnapshot, TaskRunSnapshot
from ci.controller.scheduling import Clock, Scheduler, real_clock
from ci.controller.settings import ControllerSettings
from ci.controller.store import Observation, PipelineRunConsumer, RunStore, TaskRunConsumer
from ci.controller.verification import RunVerifier
from ci.kube import labels, patching
from ci.kube.binding_keys import BindingKeyStore
from ci.kube.connecting import api_client, custom_objects
from ci.kube.credentials import CredentialsCache, SecretReader, api_secret_reader
from ci.kube.errors import ApiUnavailableError
from ci.kube.leases import Leases
from ci.kube.pods import api_log_reader, api_log_stream
from ci.kube.repositories import Repository, RepositoryIndex, normalize_url
from ci.kube.repository_status import RepositoryStatusWriter
from ci.kube.resources import PIPELINE_RUN, REPOSITORY, TASK_RUN
from ci.kube.run_requests import RunRequests
from ci.kube.watching import (
    Consumer,
    ListingConsumer,
    Object,
    Watcher,
    WatchEvent,
    run_in_thread,
    whole,
)
from ci.repository_forges import RepositoryForges
from ci.settings import check_details_url_template

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Seconds between checks of the caller's `stop` event.
STOP_POLL = 0.2
# Seconds to wait for a watch's first list before starting the next one anyway.
FIRST_LIST_TIMEOUT = 120.0
# Seconds to wait for watch threads to end on shutdown.
JOIN_TIMEOUT = 10.0
# Between reads of the binding key while the API server does not answer (start-up).
KEY_RETRY_SECONDS = 2.0

# Archive queue workers per archive thread: most wait for a thread, none hold one.
ARCHIVE_QUEUE_FACTOR = 4
# Threads for blocking calls beyond one per worker: the lease's renewal, the scheduler and
# the binding key's re-read never wait behind the workers' API calls.
SPARE_THREADS = 8


def run_controller(
    settings: ControllerSettings,
    *,
    stop: threading.Event,
    metrics: ControllerMetrics | None = None,
    clock: Clock = real_clock,
) -> None:
    """Run until `stop` is set or the lease is lost. `clock` is the time schedules are
    started by (tests pass their own)."""
    check_details_url_template(settings.details_url_template)
    controller = _Controller(settings, metrics=metrics or ControllerMetrics(), clock=clock)
    asyncio.run(controller.run(stop))


class _FirstList(Generic[T]):
    """Wraps a consumer to tell when its first list arrived: `listed` is set on the loop the
    moment the watcher's thread has handed the whole list (not at the next poll: the three
    kinds are listed one after the other, so a poll's wait would count three times)."""

    def __init__(self, consumer: Consumer[T], *, loop: asyncio.AbstractEventLoop,
                 after: Callable[[], None] | None = None) -> None:
        self._consumer = consumer
        self._after = after
        self._loop = loop
        self.listed = asyncio.Event()
        # Decided once, as the watcher decides for this wrapper: parts go on only to a
        # consumer that takes them.
        self._on_part = consumer.on_list_part if isinstance(consumer, ListingConsumer) else None

    def on_list_part(self, objects: Sequence[T]) -> None:
        if self._on_part is not None:
            self._on_part(objects)

    def on_relist(self, objects: Sequence[T]) -> None:
        self._consumer.on_relist(objects)
        self._loop.call_soon_threadsafe(self.listed.set)
        if self._after is not None:
            self._after()

    def on_event(self, event: WatchEvent[T]) -> None:
        self._consumer.on_event(event)
        if self._after is not None:
            self._after()


async def _wait_listed(consumers: Sequence[_FirstList[Any]], stopping: asyncio.Event, *,
                       timeout: float = FIRST_LIST_TIMEOUT) -> None:
    """Until each consumer's first list arrived (or `timeout` seconds passed for one: go on
    without it, or the controller stops)."""
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        for consumer in consumers:
            listed = asyncio.ensure_future(consumer.listed.wait())
            done, _ = await asyncio.wait({listed, stopped}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            listed.cancel()
            if stopped in done:
                return
            if not done:
                log.warning("first list is late; going on")
    finally:
        stopped.cancel()


async def _first_keys(keys: BindingKeyStore, stopping: asyncio.Event) -> bool:
    """Read the binding key once, retrying while the API server is unavailable; False if
    told to stop first."""
    while not stopping.is_set():
        try:
            await asyncio.to_thread(keys.keys)
            return True
        except ApiUnavailableError as error:
            log.warning("binding key read failed; retrying", error=str(error),
                        retry_in_seconds=KEY_RETRY_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), KEY_RETRY_SECONDS)
    return False


class _Controller:
    def __init__(self, settings: ControllerSettings, *, metrics: ControllerMetrics,
                 clock: Clock) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._identity = settings.identity or f"{socket.gethostname()}-{os.getpid()}"
        # A new one per process: tells a report this process was sending from one a killed
        # predecessor may have delivered.
        self._incarnation = f"{self._identity}-{uuid.uuid4().hex[:8]}"
        self._watchers: list[Watcher[Any]] = []
        self._archive_queue: KeyedQueue[RunKey, Observation] | None = None
        self._threads: list[threading.Thread] = []

    async def run(self, stop: threading.Event) -> None:
        settings = self._settings
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        # asyncio's default pool has cpu_count + 4 threads: on two CPUs, six API calls at a
        # time for 32 workers, and a lease renewal queued behind a burst's patches.
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            settings.workers + SPARE_THREADS, thread_name_prefix="ferry-controller"))
        watch_stop = loop.create_task(self._watch_stop(stop, stopping))
        client = api_client(settings.kubernetes)  # its pool sized for the workers
        http = httpx.AsyncClient(timeout=settings.forge_timeout)
        # Everything imported so far (the Kubernetes client's models, pydantic's schemas)
        # lives as long as the process: out of the collector's way, a full collection
        # scans only the runs and the work in flight.
        gc.freeze()
        server = None
        try:
            if settings.metrics_port is not None:
                from prometheus_client import start_http_server  # noqa: PLC0415

                server, _ = start_http_server(settings.metrics_port,
                                              registry=self._metrics.registry)
            leases = (
                Leases(client, namespace=settings.leader.namespace, name=settings.leader.name,
                       timeout=settings.kubernetes.request_timeout_seconds)
                if settings.leader.enabled else None
            )
            keys = BindingKeyStore(client, settings.kubernetes)
            # Read (or made) before leading: without it nothing is reported, and an account
            # that may not read it is a broken install, said at once (the process exits). An
            # API server that does not answer yet is waited for, as the Lease is.
            if not await _first_keys(keys, stopping):
                return
            leadership = Leadership(leases, identity=self._identity, settings=settings.leader)
            if not await leadership.acquire(stopping):
                return
            self._metrics.leader.set(1)
            await self._serve(client, http, leadership, stopping, keys)
        finally:
            self._metrics.leader.set(0)
            stopping.set()
            for watcher in self._watchers:
                watcher.stop()
            for thread in self._threads:
                await asyncio.to_thread(thread.join, JOIN_TIMEOUT)
            await http.aclose()
            client.close()
            if server is not None:
                server.shutdown()
                server.server_close()
            watch_stop.cancel()
            await asyncio.gather(watch_stop, return_exceptions=True)
            log.info("controller stopped", identity=self._identity)

    async def _watch_stop(self, stop: threading.Event, stopping: asyncio.Event) -> None:
        while not stop.is_set() and not stopping.is_set():
            await asyncio.sleep(STOP_POLL)
        stopping.set()

    def _watch(self, *, api: Any, kind: Any, consumer: Consumer[T],
               convert: Callable[[Object], T], namespace: str | None,
               selector: str | None) -> None:
        watcher = Watcher(api=api, kind=kind, consumer=consumer, convert=convert,
                          settings=self._settings.watch, namespace=namespace,
                          label_selector=selector)
        self._watchers.append(watcher)
        self._threads.append(run_in_thread(
            watcher, name=f"watch {kind.plural} {namespace or '*'}"))

    async def _serve(self, client: Any, http: httpx.AsyncClient, leadership: Leadership,
                     stopping: asyncio.Event, keys: BindingKeyStore) -> None:
        settings = self._settings
        loop = asyncio.get_running_loop()
        api = custom_objects(client)
        namespaces: Sequence[str | None] = settings.namespaces or (None,)
        read_secret = api_secret_reader(
            client, timeout=settings.kubernetes.request_timeout_seconds)

        routing: Routing
        def notify(observations: Sequence[tuple[RunKey, Observation]]) -> None:
            loop.call_soon_threadsafe(routing.submit_runs, observations)

        store = RunStore(notify)
        repositories = RepositoryIndex()
        verifier = RunVerifier(keys.keys, window=settings.binding_window, metrics=self._metrics,
                               cached=keys.cached)

        def repositories_changed() -> None:
            loop.call_soon_threadsafe(routing.resubmit_all)

        credentials = CredentialsCache(read_secret, ttl=settings.credentials_ttl)
        archive = open_store(settings.archive) if settings.archive is not None else None
        poster = Poster(
            api=api, store=store, repositories=repositories,
            forges=RepositoryForges(credentials, http),
            log_tails=LogTails(read_log=api_log_reader(
                client, timeout=settings.kubernetes.request_timeout_seconds),
                read_secret=read_secret, lines=settings.log_tail_lines, archive=archive),
            leadership=leadership, metrics=self._metrics, settings=settings,
            incarnation=self._incarnation,
            on_final=lambda run, repository: routing.on_final(repository),
            verifier=verifier,
        )
        housekeeping = _Housekeeping(api=api, store=store, repositories=repositories,
                                     leadership=leadership, metrics=self._metrics,
                                     verifier=verifier,
                                     renew_interval=settings.leader.renew_interval,
                                     archiving=archive is not None,
                                     timeout=settings.kubernetes.request_timeout_seconds)
        archiver = self._archiver(
            client=client, api=api, store=store, repositories=repositories,
            credentials=credentials, read_secret=read_secret, archive=archive,
            leadership=leadership, verifier=verifier,
            on_archived=lambda run, repository: routing.on_final(repository))

        async def handle(key: Key, item: Observation | None, attempt: int) -> Retry | None:
            action, namespace, name = key
            if action == "run" and item is not None:
                return await poster.handle((namespace, name), item, attempt)
            if action == "admit":
                return await housekeeping.admit(namespace, name)
            if action == "prune":
                return await housekeeping.prune(namespace, name)
            return None

        queue = KeyedQueue(handle, workers=settings.workers)
        self._export_gauges(queue)
        routing = Routing(queue=queue, archive_queue=self._archive_queue, store=store,
                          admit=settings.admit, prune=settings.prune)

        # Renewing from the moment the lease is held: starting the watches can take longer
        # than the lease is trusted for, and every run they list would meet a lease not held.
        keeping = loop.create_task(leadership.keep(stopping))
        stopped = loop.create_task(stopping.wait())
        resumed: asyncio.Task[None] | None = None
        scheduling: asyncio.Task[None] | None = None
        retaining: asyncio.Task[None] | None = None
        try:
            run_consumers = await self._start_watches(
                api=api, namespaces=namespaces, store=store, repositories=repositories,
                repositories_changed=repositories_changed, stopping=stopping)
            log.info("controller running", identity=self._identity,
                     namespaces=list(settings.namespaces) or "*")
            resumed = loop.create_task(self._log_resumed(run_consumers, queue, store, stopping))
            scheduling = loop.create_task(
                self._scheduler(client, repositories, leadership).run(stopping))
            retaining = loop.create_task(self._retain(
                archiver=archiver, archive=archive, settings=settings.archive,
                repositories=repositories, leadership=leadership, stopping=stopping))
            await asyncio.wait({keeping, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.set()
            await queue.close()
            if self._archive_queue is not None:
                await self._archive_queue.close()
            if archiver is not None:
                archiver.close()
            others = [task for task in (stopped, resumed, scheduling, retaining)
                      if task is not None]
            for task in others:
                task.cancel()
            await asyncio.gather(keeping, *others, return_exceptions=True)

    def _export_gauges(self, queue: KeyedQueue[Key, Observation | None]) -> None:
        self._metrics.queue_depth.set_function(lambda: queue.depth)
        self._metrics.watch_restarts_from(
            lambda: float(sum(watcher.restarts for watcher in self._watchers)))

    def _archiver(self, *, client: Any, api: Any, store: RunStore,
                  repositories: RepositoryIndex, credentials: CredentialsCache,
                  read_secret: SecretReader, archive: LogStore | None, leadership: Leadership,
                  verifier: RunVerifier,
                  on_archived: Callable[[RunSnapshot, Repository], None]) -> Archiver | None:
        """The step-log archiver and its queue, when an archive is configured."""
        settings = self._settings
        if archive is None or settings.archive is None:
            return None
        archiver = Archiver(
            api=api, store=store, repositories=repositories, credentials=credentials,
            read_secret=read_secret,
            stream_log=api_log_stream(client, timeout=settings.kubernetes.request_timeout_seconds),
            archive=archive, settings=settings.archive, leadership=leadership,
            metrics=self._metrics, verifier=verifier, on_archived=on_archived,
            request_timeout=settings.kubernetes.request_timeout_seconds,
        )
        self._archive_queue = KeyedQueue(
            archiver.handle, workers=settings.archive.workers * ARCHIVE_QUEUE_FACTOR)
        return archiver

    def _scheduler(self, client: Any, repositories: RepositoryIndex, leadership: Leadership
                   ) -> Scheduler:
        timeout = self._settings.kubernetes.request_timeout_seconds
        requests = RunRequests(client, request_timeout=timeout)
        requester: list[str] = []

        def who() -> str:
            # Asked once, lazily, from the scheduler's worker thread: the API server's name
            # for this controller, which the admission policy checks `requestedBy` against.
            if not requester:
                requester.append(requests.whoami() or self._identity)
            return requester[0]

        return Scheduler(
            repositories=repositories, requests=requests,
            write_status=RepositoryStatusWriter(client, request_timeout=timeout).write_schedules,
            leadership=leadership, clock=self._clock, requester=who,
            interval=self._settings.schedule_interval,
        )

    async def _retain(self, *, archiver: Archiver | None, archive: LogStore | None,
                      settings: ArchiveSettings | None, repositories: RepositoryIndex,
                      leadership: Leadership, stopping: asyncio.Event) -> None:
        """Retention of archived logs, by the leader, every `retention_interval` seconds
        (the first pass at once: a controller restarted daily still applies it)."""
        if archiver is None or archive is None or settings is None:
            return
        while not stopping.is_set():
            if leadership.held():
                try:
                    await archiver.in_pool(
                        lambda: retain(archive, rules=settings.retention,
                                       repositories=repositories.all(),
                                       namespaces=self._settings.namespaces,
                                       now=datetime.datetime.now(datetime.UTC)))
                except Exception as error:  # the store is down: the next pass will do
                    log.warning("retention pass failed", where=settings.where,
                                error=f"{type(error).__name__}: {str(error)[:200]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), settings.retention_interval)

    async def _start_watches(self, *, api: Any, namespaces: Sequence[str | None],
                             store: RunStore, repositories: RepositoryIndex,
                             repositories_changed: Callable[[], None],
                             stopping: asyncio.Event) -> list[_FirstList[RunSnapshot]]:
        """Repositories first (credentials and keepRuns), then TaskRuns, then runs: a resumed
        run must find its Repository and its jobs when its first event is handled."""
        loop = asyncio.get_running_loop()
        repository_consumers = []
        for namespace in namespaces:
            consumer = _FirstList(repositories, loop=loop, after=repositories_changed)
            repository_consumers.append(consumer)
            self._watch(api=api, kind=REPOSITORY, consumer=consumer, convert=whole,
                        namespace=namespace, selector=None)
        await _wait_listed(repository_consumers, stopping)
        task_run_consumers = []
        for namespace in namespaces:
            task_runs = _FirstList(TaskRunConsumer(store, namespace=namespace), loop=loop)
            task_run_consumers.append(task_runs)
            self._watch(api=api, kind=TASK_RUN, consumer=task_runs, convert=TaskRunSnapshot.of,
                        namespace=namespace, selector=labels.MANAGED_SELECTOR)
        await _wait_listed(task_run_consumers, stopping)
        run_consumers = []
        for namespace in namespaces:
            runs = _FirstList(PipelineRunConsumer(store, namespace=namespace), loop=loop)
            run_consumers.append(runs)
            self._watch(api=api, kind=PIPELINE_RUN, consumer=runs, convert=RunSnapshot.of,
                        namespace=namespace, selector=labels.MANAGED_SELECTOR)
        return run_consumers

    async def _log_resumed(self, consumers: Sequence[_FirstList[RunSnapshot]],
                           queue: KeyedQueue[Key, Observation | None], store: RunStore,
                           stopping: asyncio.Event) -> None:
        """Say when the runs present at startup were all looked at (operators and the bench
        time a restart by it)."""
        started = time.monotonic()
        await _wait_listed(consumers, stopping)
        listed = time.monotonic() - started
        await queue.idle()
        log.info("resumed", runs=len(store), listed_seconds=round(listed, 3),
                 resumed_seconds=round(time.monotonic() - started, 3))


class _Housekeeping:
    """Admission and pruning: both change runs, so only the leader does them."""

    def __init__(self, *, api: Any, store: RunStore, repositories: RepositoryIndex,
                 leadership: Leadership, metrics: ControllerMetrics,
                 verifier: RunVerifier, renew_interval: float, archiving: bool,
                 timeout: float) -> None:
        self._verifier = verifier
        self._timeout = timeout  # seconds for one API call
        self._archiving = archiving
        self._api = api
        self._renew_interval = renew_interval
        self._store = store
        self._repositories = repositories
        self._leadership = leadership
        self._metrics = metrics

    async def admit(self, namespace: str, group: str) -> Retry | None:
        if not self._leadership.held():
            return Retry(self._renew_interval)  # as a run's report: looked at again
        # Unbound runs neither start nor hold a slot: a hand-made run cannot block a group.
        runs = [run for run in self._store.runs(namespace) if admission.group_of(run) == group
                and await self._verifier.bound(run, self._repositories)]
        for run in admission.to_admit(runs):
            try:
                written = await asyncio.to_thread(
                    patching.merge_patch, self._api, PIPELINE_RUN, namespace=namespace,
                    name=run.name, patch={"spec": {"status": None}},
                    resource_version=run.resource_version, timeout=self._timeout,
                )
            except patching.PatchConflictError:
                return Retry(0.5)  # the run changed: decide again on what the watch shows
            except patching.ObjectGoneError:
                continue
            self._store.remember(RunSnapshot.of(written))
            self._metrics.admitted.inc()
            log.info("admitted", run=f"{namespace}/{run.name}", group=group)
        return None

    async def prune(self, namespace: str, name: str) -> Retry | None:
        if not self._leadership.held():
            return Retry(self._renew_interval)
        found = [r for r in self._repositories.all()
                 if r.namespace == namespace and r.name == name]
        if not found:
            return None
        repository = found[0]
        url = normalize_url(repository.url)
        runs = [run for run in self._store.runs(namespace)
                if run.repository_url and normalize_url(run.repository_url) == url
                and await self._verifier.bound(run, self._repositories)]
        for run in pruning.to_prune(runs, keep=repository.keep_runs, archiving=self._archiving):
            deleted = await asyncio.to_thread(
                patching.delete, self._api, PIPELINE_RUN, namespace=namespace,
                name=run.name, uid=run.uid, timeout=self._timeout)
            if deleted:
                self._metrics.pruned.inc()
                log.info("pruned", run=f"{namespace}/{run.name}", keep=repository.keep_runs)
        return None
