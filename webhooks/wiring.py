"""What the app's lifespan opens: the forge HTTP client, then either the cluster side
(Kubernetes client, Repository watch, Secret reader, Tekton backend, Repository status
writer) or the local backend.

Everything opened is registered on the caller's exit stack, so shutdown closes it in reverse
order whatever happened in between.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from ci.archive.configured import archive_settings
from ci.archive.store import LogStore
from ci.backends.configured import ConfiguredRepositories
from ci.backends.local import LocalBackend, engine_for
from ci.backends.tekton import TektonBackend, TektonOptions
from ci.forges.checks import Contexts
from ci.forges.client import ForgeClient
from ci.kube.binding_keys import BindingKeyStore
from ci.kube.connecting import api_client, cluster_configured, custom_objects
from ci.kube.credentials import CredentialsCache, SecretReader, api_secret_reader
from ci.kube.pipeline_runs import PipelineRuns, translate_api_errors
from ci.kube.repositories import RepositoryIndex
from ci.kube.repository_status import RepositoryStatusWriter
from ci.kube.resources import REPOSITORY, RUN_REQUEST
from ci.kube.reviews import Reviews, api_reviewers
from ci.kube.run_requests import RunRequests
from ci.kube.step_logs import StepLogs
from ci.kube.watching import Watcher, WatchSettings, run_in_thread, whole
from ci.logs import Redactor
from ci.repository_forges import RepositoryForges
from ci.settings import Settings
from webhooks.answers import Answer
from webhooks.api.masking import run_maskers
from webhooks.api.service import ReadService
from webhooks.deliveries import DeliveryMemory
from webhooks.last_events import LastEvents
from webhooks.metrics import Metrics
from webhooks.receiver import Receiver
from webhooks.requests import RunRequestWatch, RunRequestWorker
from webhooks.web.access import ForgeAccess
from webhooks.web.identity import WebSide
from webhooks.web.oauth import OAuthProvider
from webhooks.web.sessions import SessionCookies
from webhooks.web.signin import SignIn, templates

log = structlog.get_logger(__name__)

# Seconds to wait for the watch thread after asking it to stop; it closes its stream at once.
WATCH_STOP_SECONDS = 5.0

Readiness = Callable[[], Awaitable[str | None]]  # None: ready; else why not


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    receiver: Receiver
    readiness: Readiness
    mode: str  # "cluster" or "local"
    read: ReadService | None = None  # the read API (`/api/v1`); None: no cluster
    web: WebSide | None = None  # the web pages' sign-in (`/ui`); None: no pages
    signin: SignIn | None = None  # the sign-in routes (`/ui/signin...`); None: no pages


def ferry_version() -> str:
    try:
        return importlib.metadata.version("ferry")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


async def open_runtime(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    redactor: Redactor,
    metrics: Metrics,
    forge_transport: httpx.AsyncBaseTransport | None = None,
    archive: LogStore | None = None,
) -> Runtime:
    forges = settings.forges
    http = await stack.enter_async_context(
        httpx.AsyncClient(
            transport=forge_transport,
            timeout=httpx.Timeout(forges.timeout_seconds, connect=forges.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=forges.max_connections),
            follow_redirects=False,  # a redirect would carry our token elsewhere
        )
    )
    deliveries: DeliveryMemory[Answer] = DeliveryMemory(
        size=settings.webhooks.delivery_memory, ttl=settings.webhooks.delivery_memory_seconds
    )
    if cluster_configured(settings.kubernetes):
        return _open_cluster(
            settings, stack, http=http, deliveries=deliveries, redactor=redactor, metrics=metrics,
            archive=archive,
        )
    return await _open_local(settings, stack, http=http, deliveries=deliveries, redactor=redactor)


def _open_cluster(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    http: httpx.AsyncClient,
    deliveries: DeliveryMemory[Answer],
    redactor: Redactor,
    metrics: Metrics,
    archive: LogStore | None,
) -> Runtime:
    api = api_client(settings.kubernetes)
    stack.callback(api.close)
    index = RepositoryIndex()
    watcher = Watcher(
        api=custom_objects(api), kind=REPOSITORY, consumer=index, convert=whole,
        settings=WatchSettings(),
    )
    thread = run_in_thread(watcher, name="ferry-repository-watch")

    def stop_watching() -> None:
        watcher.stop()
        thread.join(timeout=WATCH_STOP_SECONDS)

    stack.callback(stop_watching)
    runs = PipelineRuns(api, request_timeout=settings.kubernetes.request_timeout_seconds)
    keys = BindingKeyStore(api, settings.kubernetes)
    backend = TektonBackend(
        runs,
        options=TektonOptions(
            name_prefix=settings.webhooks.run_name_prefix,
            clone_image=settings.webhooks.clone_image,
            ferry_version=ferry_version(),
            binding_window=settings.controller.binding_window_seconds,
        ),
        binding_keys=keys.keys,
    )
    timeout = settings.kubernetes.request_timeout_seconds
    last_events = LastEvents(
        RepositoryStatusWriter(api, request_timeout=timeout).write_last_event,
        count=lambda result: metrics.status_writes.labels(result).inc(),
    )
    # Registered after the API client: closed (waiting writes finished) before it.
    stack.push_async_callback(last_events.close)
    read_secret = _translated(api_secret_reader(api, timeout=timeout))
    credentials = CredentialsCache(read_secret, ttl=settings.webhooks.credentials_ttl_seconds)
    receiver = Receiver(
        repositories=index,
        repository_forges=RepositoryForges(credentials, http, redactor=redactor),
        backend=backend,
        deliveries=deliveries,
        forges=settings.forges,
        last_events=last_events,
        contexts=Contexts(prefix=settings.controller.context_prefix),
    )
    _watch_run_requests(api, receiver, index, stack, timeout=timeout)
    probe = _CachedProbe(backend.ready, ttl=settings.webhooks.readiness_cache_seconds)

    async def readiness() -> str | None:
        if not index.synced.is_set():
            return "the Repository index has not been listed yet"
        return await probe()

    review_token, review_access = api_reviewers(api, timeout=timeout)
    read = ReadService(
        reviews=Reviews(review_token=review_token, review_access=review_access),
        repositories=index.all,
        runs=runs,
        step_logs=StepLogs(api, timeout=timeout),
        archive=archive,
        masker_for=run_maskers(read_secret=read_secret, credentials=credentials),
    )
    web, signin = open_web(settings, http)
    log.info("serving webhooks with the Tekton backend", archive=archive is not None,
             pages=settings.web.public_url)
    return Runtime(receiver=receiver, readiness=readiness, mode="cluster", read=read, web=web,
                   signin=signin)


def open_web(settings: Settings, http: httpx.AsyncClient
              ) -> tuple[WebSide, SignIn] | tuple[None, None]:
    """The pages' sign-in, sessions and access checks, when `web.public_url` is set. The forge
    client is shared: it follows no redirects, so no token is carried to another host."""
    web = settings.web
    if not web.public_url:
        return None, None
    providers = {provider.name: OAuthProvider(provider, http) for provider in web.providers}
    sessions = SessionCookies(key=web.session_key, hours=web.session_hours,
                              secure=web.public_url.startswith("https://"))
    access = ForgeAccess(providers, cache_seconds=web.access_cache_seconds)
    signin = SignIn(sessions=sessions, providers=providers, public_url=web.public_url,
                    templates=templates())
    return WebSide(access=access, sessions=sessions), signin


async def _open_local(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    http: httpx.AsyncClient,
    deliveries: DeliveryMemory[Answer],
    redactor: Redactor,
) -> Runtime:
    local = settings.local
    contexts = Contexts(prefix=settings.controller.context_prefix)
    repositories = ConfiguredRepositories(
        local.repositories, hold_untrusted=local.holds_untrusted
    )
    for secret in [*repositories.secrets(), *local.secrets.values()]:
        redactor.add(secret)
    backend = LocalBackend(
        state_directory=local.state_directory,
        parallel_jobs=local.parallel_jobs,
        secrets=local.secrets,
        clone_url=repositories.clone_url,
        engine=engine_for(local),
        runs_untrusted=not local.holds_untrusted,
        contexts=contexts,
        archive=archive_settings(settings.archive),
    )
    repository_forges = RepositoryForges(repositories, http, redactor=redactor)
    receiver = Receiver(
        repositories=repositories,
        repository_forges=repository_forges,
        backend=backend,
        deliveries=deliveries,
        forges=settings.forges,
        contexts=contexts,
    )

    def client_for(key: str) -> ForgeClient | None:
        repository = repositories.by_key(key)
        if repository is None:
            return None
        connection = repository_forges.of(
            repository, repositories.for_repository(repository)).connection
        return connection.client if connection is not None else None

    await backend.start(client_for)
    stack.push_async_callback(backend.close)
    log.info(
        "no cluster configured: running pipelines on this machine",
        repositories=len(local.repositories),
        state_directory=str(local.state_directory),
        engine=local.engine,
        untrusted_pull_requests="run" if not local.holds_untrusted else "wait for /ok-to-test",
    )
    return Runtime(receiver=receiver, readiness=backend.ready, mode="local")


def _watch_run_requests(api: Any, receiver: Receiver, index: RepositoryIndex,
                        stack: AsyncExitStack, *, timeout: float) -> None:
    """Scheduled and manual runs (webhooks/requests.py): a watch of RunRequests feeding one
    worker on this event loop. Stopped before the Repository watch and the API client."""
    worker = RunRequestWorker(receiver, repositories=index,
                              store=RunRequests(api, request_timeout=timeout))
    worker.start()
    watcher = Watcher(
        api=custom_objects(api), kind=RUN_REQUEST,
        consumer=RunRequestWatch(worker, asyncio.get_running_loop()), convert=whole,
        settings=WatchSettings(),
    )
    thread = run_in_thread(watcher, name="ferry-run-request-watch")

    async def stop() -> None:
        watcher.stop()
        await asyncio.to_thread(thread.join, WATCH_STOP_SECONDS)
        await worker.close()

    stack.push_async_callback(stop)


def _translated(reader: SecretReader) -> SecretReader:
    """Secret reads failing like every other API call: unreachable means 503, not a crash."""

    def read(namespace: str, name: str) -> Any:
        with translate_api_errors(f"read Secret {namespace}/{name}"):
            return reader(namespace, name)

    return read


class _CachedProbe:
    """A readiness check whose success counts for `ttl` seconds (failures are re-checked)."""

    def __init__(self, check: Readiness, *, ttl: float) -> None:
        self._check = check
        self._ttl = ttl
        self._ready_until = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> str | None:
        async with self._lock:
            if time.monotonic() < self._ready_until:
                return None
            reason = await self._check()
            if reason is None:
                self._ready_until = time.monotonic() + self._ttl
            return reason
