"""The environment of a local step: the same variables, with the same precedence, as on Tekton.

Lowest first:
1. a base, on the host engine only (in a container the image's own environment plays this
   part). `ferry run` runs the developer's own code on their own machine: its base is a
   few named variables taken from their shell (`BASE_VARIABLES`: PATH, HOME, LANG...), so
   their tools and caches work, and nothing else of the shell leaks in. `ferry serve` runs
   code that arrived in a webhook, beside its own secrets: its base is built from nothing
   (`isolated_base_environment`: a configured PATH, LANG, and a fresh HOME and TMPDIR per
   job, from `private_directories`), so no variable of the server reaches a step, nor the
   way to its settings file (`$FERRY_CONFIG`) or its home;
2. the plan's plain variables, `PlannedJob.env_for(step)` (pipeline < job < MATRIX_* < step);
3. Ferry's variables (`CI`, `FERRY`, `FERRY_JOB`, `FERRY_PIPELINE_RUN` and one `FERRY_*` per
   event field, named by `pipelines.scripts.EVENT_PARAMS`): they describe the run and win a
   clash, as the Tekton compiler drops plain variables of the same name;
4. secrets, which win over everything, as `secretKeyRef` entries do on Tekton.

Event data is attacker-controlled text and only ever travels as these values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ci.defaults import STEP_PATH  # `local.step_path`'s default, the PATH of host steps
from pipelines.events import Event
from pipelines.planning import PlannedJob, PlannedStep
from pipelines.scripts import EVENT_PARAMS, event_values

BASE_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
)
# When the caller has no PATH at all, steps still need to find bash and coreutils.
FALLBACK_PATH = "/usr/local/bin:/usr/bin:/bin"
# A locale every glibc has, so tools that insist on one work and text is UTF-8.
STEP_LANG = "C.UTF-8"


def base_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The clean base for host steps, from `source` (default: this process's environment)."""
    source = os.environ if source is None else source
    base = {name: source[name] for name in BASE_VARIABLES if name in source}
    base.setdefault("PATH", FALLBACK_PATH)
    return base


def isolated_base_environment(*, path: str = STEP_PATH) -> dict[str, str]:
    """The base of `ferry serve`'s host steps: chosen here, nothing taken from the server."""
    return {"PATH": path, "LANG": STEP_LANG}


def private_directories(directory: Path) -> dict[str, str]:
    """HOME and TMPDIR in fresh, empty directories under `directory` (one per job attempt),
    so that a step neither reads the server's home nor leaves files for the next run."""
    home, temporary = directory / "home", directory / "tmp"
    for created in (home, temporary):
        created.mkdir(parents=True, mode=0o700)
    return {"HOME": str(home), "TMPDIR": str(temporary)}


def ferry_variables(event: Event, *, job: str, run_name: str) -> dict[str, str]:
    """`CI`, `FERRY`, `FERRY_JOB`, `FERRY_PIPELINE_RUN` and the `FERRY_*` event variables."""
    values = event_values(event)
    variables = {env: values[param] for param, env, _ in EVENT_PARAMS}
    variables |= {"CI": "true", "FERRY": "true", "FERRY_JOB": job, "FERRY_PIPELINE_RUN": run_name}
    return variables


def step_environment(
    *,
    job: PlannedJob,
    step: PlannedStep,
    ferry: Mapping[str, str],
    secrets: Mapping[str, str],
    base: Mapping[str, str],
) -> dict[str, str]:
    """The whole environment of one step (see the module docstring for the precedence)."""
    return {**base, **job.env_for(step), **ferry, **secrets}
