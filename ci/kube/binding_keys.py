"""The binding key (`ci.kube.binding`): a Secret in Ferry's own namespace, made once.

Only the receiver's and the controller's ServiceAccounts may read it (deploy/base/
binding-key-rbac.yaml: `get` limited to this one name), and no team role reaches Ferry's
namespace. It is never in git: the first component that starts and finds it absent creates it
with random bytes; when both race, the create that loses (409) reads the winner's. An
operator may also create it beforehand (docs/install.md), e.g. from a secrets manager.

Data keys: `key` signs and verifies; `previous` (optional) only verifies, so a key can be
rotated without refusing the runs already in flight (docs/install.md, "Rotating").
Read again after `ttl` seconds, so a rotation takes effect without restarts; a failed re-read
keeps the last keys (an API server hiccup must not stop reporting).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import structlog

from ci.kube.binding import KEY_BYTES, BindingKeys
from ci.kube.errors import ApiRefusedError, BindingKeyError
from ci.kube.pipeline_runs import translate_api_errors
from ci.kube.plain import call_json
from ci.kube.resources import SECRET
from ci.settings import KubernetesSettings

log = structlog.get_logger(__name__)

CURRENT_KEY: Final = "key"
PREVIOUS_KEY: Final = "previous"


class BindingKeyStore:
    """`keys()`: the current keys, reading (or creating) the Secret when the cache is old.

    Blocks on the API server: call it from a worker thread in async code.
    """

    def __init__(self, api_client: Any, settings: KubernetesSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """The Secret is `settings.binding_secret_namespace/binding_secret_name`, read again
        after `binding_key_ttl_seconds`."""
        self._client = api_client
        self._namespace = settings.binding_secret_namespace
        self._name = settings.binding_secret_name
        self._ttl = settings.binding_key_ttl_seconds
        self._timeout = settings.request_timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: BindingKeys | None = None
        self._read_at = 0.0

    def cached(self) -> BindingKeys | None:
        """The keys if the cache is fresh, else None (then call `keys`): never blocks on the
        API server, so async code asks this first and saves a thread per run."""
        with self._lock:
            if self._keys is not None and self._clock() - self._read_at < self._ttl:
                return self._keys
            return None

    def keys(self) -> BindingKeys:
        with self._lock:
            now = self._clock()
            if self._keys is not None and now - self._read_at < self._ttl:
                return self._keys
            try:
                self._keys = self._read_or_create()
            except Exception as error:
                if self._keys is None:
                    raise
                log.warning("could not read the binding key again; using the last one",
                            error=type(error).__name__)
            self._read_at = now
            return self._keys

    def _read_or_create(self) -> BindingKeys:
        found = self._read()
        if found is not None:
            return found
        self._create()
        found = self._read()
        if found is None:
            raise BindingKeyError("the binding key Secret vanished right after it was created")
        return found

    def _read(self) -> BindingKeys | None:
        namespace, name = self._namespace, self._name
        try:
            with translate_api_errors(f"read Secret {namespace}/{name}"):
                secret = call_json(self._client, "GET", SECRET.path(namespace, name),
                                   timeout=self._timeout)
        except ApiRefusedError as error:
            if error.status == 404:
                return None
            raise
        return keys_of(secret.get("data") or {}, where=f"Secret {namespace}/{name}")

    def _create(self) -> None:
        namespace, name = self._namespace, self._name
        body: Any = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/part-of": "ferry"}},
            "data": {CURRENT_KEY: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()},
        }
        try:
            with translate_api_errors(f"create Secret {namespace}/{name}"):
                call_json(self._client, "POST", SECRET.path(namespace), body=body,
                          timeout=self._timeout)
        except ApiRefusedError as error:
            if error.status != 409:  # 409: another component created it first; read theirs
                raise
            return
        log.info("created the binding key", secret=f"{namespace}/{name}")


def keys_of(data: Mapping[str, str], *, where: str) -> BindingKeys:
    """The keys in a Secret's `data` (base64, as the API server returns it)."""
    try:
        current = base64.b64decode(data.get(CURRENT_KEY) or "", validate=True)
        previous = data.get(PREVIOUS_KEY)
        older = (base64.b64decode(previous, validate=True),) if previous else ()
        return BindingKeys(current, older)
    except ValueError as error:
        raise BindingKeyError(f"{where}: {error}") from None
