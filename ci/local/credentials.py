"""Secret values for a local run, where there is no Kubernetes Secret to read them from.

A job's secret reference `{env: PYPI_TOKEN, secret: pypi, key: token}` is filled from, in
order: `--secret PYPI_TOKEN=...`, `--secret pypi/token=...`, then `$PYPI_TOKEN` in the
developer's environment. A secret found nowhere is left unset and reported as missing: the
run goes on without it, as a pull request from a fork runs on the cluster, and a step that
needs it fails with its own message. Refusing to run would make every pipeline with a deploy
token unrunnable on a laptop, where deploying is rarely the point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from msgspec import Struct

from pipelines.spec import SecretRef


class SecretArgumentError(ValueError):
    pass


class JobSecrets(Struct, frozen=True, kw_only=True):
    values: Mapping[str, str]  # env name -> value
    missing: tuple[SecretRef, ...]


def parse_secret_arguments(arguments: Sequence[str]) -> dict[str, str]:
    """`["NAME=VALUE", "secret/key=VALUE"]` -> a store; raises `SecretArgumentError`."""
    store: dict[str, str] = {}
    for argument in arguments:
        name, equals, value = argument.partition("=")
        if not equals or not name:
            # Never echo the argument: it may be a value typed without its name.
            raise SecretArgumentError("--secret takes NAME=VALUE (or SECRET/KEY=VALUE)")
        store[name] = value
    return store


def secret_store(
    refs: Iterable[SecretRef], *, given: Mapping[str, str], environment: Mapping[str, str]
) -> dict[str, str]:
    """`given` plus, for each reference not given, its env variable from `environment`."""
    store = dict(given)
    for ref in refs:
        if _lookup(ref, store) is None and ref.env in environment:
            store[ref.env] = environment[ref.env]
    return store


def job_secrets(refs: Iterable[SecretRef], store: Mapping[str, str]) -> JobSecrets:
    values: dict[str, str] = {}
    missing: list[SecretRef] = []
    for ref in refs:
        value = _lookup(ref, store)
        if value is None:
            missing.append(ref)
        else:
            values[ref.env] = value
    return JobSecrets(values=values, missing=tuple(missing))


def _lookup(ref: SecretRef, store: Mapping[str, str]) -> str | None:
    for name in (ref.env, f"{ref.secret}/{ref.key}"):
        if name in store:
            return store[name]
    return None
