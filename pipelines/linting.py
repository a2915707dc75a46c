"""Node tree -> `Spec`, collecting every problem on the way.

`lint_spec` gives the spec (None if any error) and every problem, without raising, whatever
the bytes; `pipelines.preparing.prepare` calls it for the commands and the receiver.
`load_spec` is the same, raising a `SpecError` that carries every problem (for tests and
benchmarks that want a spec in one line).

Every rule that planning, the compiler or a backend depends on is checked here, so that a
spec without errors plans, compiles and runs.

The checks run in two passes: first each job on its own (types, keys, names, limits), then
the jobs together (duplicate names, `needs`, cycles, finally rules), because only then are
all names known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from pipelines import reading
from pipelines.dependencies import check_dependencies
from pipelines.events import PRODUCED_EVENTS, EventKind
from pipelines.job_sources import JobSource
from pipelines.matrices import PLACEHOLDER, check_placeholders, read_matrix
from pipelines.parsing import Entry, MappingNode, Node, ScalarNode, SequenceNode, parse_yaml
from pipelines.problems import Position, Problem, SpecError
from pipelines.reading import Collector, join
from pipelines.spec import (
    DEFAULT_IMAGE,
    DEFAULT_JOB_NAME,
    MAX_JOBS,
    MAX_MATRIX_SUFFIX_LENGTH,
    MAX_NAME_LENGTH,
    MAX_RETRIES,
    MAX_STEPS_PER_JOB,
    MAX_TIMEOUT_SECONDS,
    Concurrency,
    Job,
    Patterns,
    SecretRef,
    Service,
    Spec,
    Step,
    When,
)
from pipelines.tekton_rules import (
    TEKTON_VARIABLE,
    TEKTON_VARIABLE_HINT,
    retries_with_allow_failure_message,
    tekton_variable_message,
)

TOP_KEYS = ("jobs", "finally", "steps", "image", "env", "when", "timeout", "concurrency",
            "cancel_in_progress")
JOB_KEYS = ("image", "steps", "needs", "env", "secrets", "services", "matrix", "timeout",
            "retries", "allow_failure", "when", "share_workspace")
STEP_KEYS = ("run", "name", "image", "env")
SERVICE_KEYS = ("image", "env", "command")
SECRET_KEYS = ("env", "secret", "key")
WHEN_KEYS = ("event", "branch", "tag", "paths")
CONCURRENCY_KEYS = ("limit", "cancel_in_progress")

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_WHITESPACE = re.compile(r"\s")  # what `str.isspace` calls whitespace (both ask Unicode)
_UNPRODUCED_HINTS = {
    EventKind.COMMENT: "`/retest` and `/ok-to-test` run the pull request's jobs again: use "
                       "`pull_request`",
}


def load_spec(
    source: str | bytes, *, filename: str = ".ci.yaml"
) -> tuple[Spec, tuple[Problem, ...]]:
    """Parse and lint a spec. Returns it with its warnings; raises `SpecError` on any error."""
    spec, problems = lint_spec(source, filename=filename)
    if spec is None:
        raise SpecError(problems)
    return spec, problems


def lint_spec(
    source: str | bytes, *, filename: str = ".ci.yaml"
) -> tuple[Spec | None, tuple[Problem, ...]]:
    """Parse and lint a spec without raising: the spec (None if any error) and every problem,
    errors first, then in file order."""
    try:
        root = parse_yaml(source, filename=filename)
    except SpecError as error:
        return None, error.problems
    out = Collector()
    spec = _Linter(out, tekton_variables=_may_hold_tekton_variables(source)).spec(root)
    problems = SpecError(out.problems).problems  # one ordering rule, kept in one place
    return (None if out.has_errors else spec), problems


def kubernetes_name(name: str) -> str:
    """The nearest DNS-1123 label to `name`, to suggest as a rename."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:MAX_NAME_LENGTH].rstrip("-") or "job"


def _may_hold_tekton_variables(source: str | bytes) -> bool:
    """Whether any text the parser read can contain `$(`: only if the file does, or if a
    double-quoted escape writes it (`"\\x24("`, or `$\\` ending a line before `(`). Most specs
    hold neither, and skip the walk that looks for Tekton variables."""
    if isinstance(source, bytes):
        return b"$(" in source or b"\\" in source
    return "$(" in source or "\\" in source


def _frozen(values: dict[str, str]) -> Mapping[str, str]:
    """A read-only view of `values`, a dict nothing else holds."""
    return MappingProxyType(values)


def _keys(node: MappingNode) -> Mapping[str, Position]:
    return MappingProxyType({entry.name: entry.key.position for entry in node.entries})


# What `JobSource.job` holds until the job is read (nothing looks at it before), so that no
# `Job` is built only to be replaced.
_NO_JOB_YET = Job(name="", steps=())


class _Linter:
    def __init__(self, out: Collector, *, tekton_variables: bool = True) -> None:
        self.out = out
        self.may_hold_tekton_variables = tekton_variables

    def spec(self, root: MappingNode) -> Spec:
        out = self.out
        # `x-...` keys are free, as in Compose files: a place for anchors to share blocks.
        extensions = [entry.name for entry in root.entries if entry.name.startswith("x-")]
        reading.mapping(out, root, "", allowed=(*TOP_KEYS, *extensions))
        if self.may_hold_tekton_variables:
            self.tekton_variables(root)
        env = self.env(_value(root.get("env")), "env", in_matrix_job=None)
        when = self.when(_value(root.get("when")), "when")
        timeout = self.timeout(_value(root.get("timeout")), "timeout")
        concurrency = self.concurrency(root)
        jobs, finally_jobs = self.all_jobs(root)
        if timeout is not None:
            for source in (*jobs, *finally_jobs):
                job = source.job
                if job.timeout_seconds is not None and job.timeout_seconds > timeout:
                    out.warn(job.position_of("timeout"), f"jobs.{job.name}.timeout",
                             f"job `{job.name}` may run {job.timeout_seconds}s but the whole "
                             f"pipeline stops after {timeout}s")
        check_dependencies(out, jobs=jobs, finally_jobs=finally_jobs)
        return Spec(
            jobs=tuple(source.job for source in jobs),
            finally_jobs=tuple(source.job for source in finally_jobs),
            env=env,
            when=when,
            concurrency=concurrency,
            timeout_seconds=timeout,
            position=root.position,
            key_positions=_keys(root),
        )

    def tekton_variables(self, root: MappingNode) -> None:
        """`$(params.x)`-style text anywhere it could reach the PipelineRun, which Tekton
        would substitute before the shell runs. `when` only filters and never reaches it;
        `x-` blocks are checked where they are used (an alias is the same node)."""
        seen: set[int] = set()
        keys: list[str | int] = []  # the path to the node being walked, built only to report

        def scalar(key: str | int, node: ScalarNode) -> None:
            if id(node) in seen:
                return
            seen.add(id(node))
            match = TEKTON_VARIABLE.search(node.text)
            if match is not None:
                path = ""
                for part in (*keys, key):
                    path = join(path, part)
                self.out.error(node, path, tekton_variable_message(match.group(0)),
                               hint=TEKTON_VARIABLE_HINT)

        def walk(node: MappingNode | SequenceNode) -> None:
            if id(node) in seen:
                return
            seen.add(id(node))
            children: Iterable[tuple[str | int, Node]] = enumerate(node.items) \
                if isinstance(node, SequenceNode) else (
                    (entry.name, entry.value) for entry in node.entries
                    if entry.name != "when" and not (node is root and entry.name.startswith("x-")))
            for key, child in children:
                if not isinstance(child, ScalarNode):
                    keys.append(key)
                    walk(child)
                    keys.pop()
                elif "$(" in child.text:  # only text with `$(` can hold a variable
                    scalar(key, child)

        walk(root)

    # -- jobs -------------------------------------------------------------------------------

    def all_jobs(self, root: MappingNode) -> tuple[list[JobSource], list[JobSource]]:
        out = self.out
        jobs_entry, steps_entry = root.get("jobs"), root.get("steps")
        image_entry = root.get("image")
        jobs: list[JobSource] = []
        if jobs_entry and steps_entry:
            out.error(steps_entry.key, "steps",
                      "the spec has both `jobs` and a top-level `steps`",
                      hint=f"move the steps into a job under `jobs`, e.g. `{DEFAULT_JOB_NAME}`")
        elif steps_entry:
            jobs = [self.shorthand_job(root, steps_entry)]
        elif jobs_entry:
            jobs = self.jobs(jobs_entry, "jobs", is_finally=False)
        else:
            out.error(root, "jobs", "the spec has no `jobs` and no `steps`",
                      hint="add `steps:` with a list of `run:` commands, or `jobs:`")
        if image_entry and not steps_entry:
            out.error(image_entry.key, "image",
                      "a top-level `image` only goes with the top-level `steps` shorthand",
                      hint="set `image` in each job")
        finally_entry = root.get("finally")
        finally_jobs = self.jobs(finally_entry, "finally", is_finally=True) \
            if finally_entry else []
        total = len(jobs) + len(finally_jobs)
        if total > MAX_JOBS:
            out.error(root, "jobs", f"the spec has {total} jobs, over the limit of {MAX_JOBS}")
        return jobs, finally_jobs

    def shorthand_job(self, root: MappingNode, steps_entry: Entry) -> JobSource:
        image_entry = root.get("image")
        source = JobSource(job=_NO_JOB_YET, key=steps_entry.key)
        image = DEFAULT_IMAGE
        if image_entry:
            image = self.image(image_entry.value, "image") or DEFAULT_IMAGE
            source.placeholders.append((image, image_entry.value, "image"))
        steps = self.steps(steps_entry.value, "steps", source=source)
        source.job = Job(name=DEFAULT_JOB_NAME, steps=steps, image=image,
                         position=root.position, key_positions=_keys(root))
        # No matrix here: any `${{ }}` in an image would reach the run as it is.
        check_placeholders(self.out, job=source.job, uses=source.placeholders)
        return source

    def jobs(self, entry: Entry, path: str, *, is_finally: bool) -> list[JobSource]:
        node = reading.mapping(self.out, entry.value, path)
        if node is None:
            return []
        if not node.entries:
            self.out.error(node, path, f"`{path}` has no jobs")
        sources = []
        for job_entry in node.entries:
            source = self.job(job_entry, join(path, job_entry.name), is_finally=is_finally)
            if source is not None:
                sources.append(source)
        return sources

    def job(self, entry: Entry, path: str, *, is_finally: bool) -> JobSource | None:
        out = self.out
        node = reading.mapping(out, entry.value, path, allowed=JOB_KEYS)
        if node is None:
            return None
        matrix_entry = node.get("matrix")
        matrix = read_matrix(out, matrix_entry.value, join(path, "matrix")) \
            if matrix_entry else None
        self.job_name(entry.key, path, has_matrix=matrix is not None)
        source = JobSource(job=_NO_JOB_YET, key=entry.key, has_matrix=matrix is not None)

        def get(key: str) -> Node | None:
            found = node.get(key)
            return found.value if found else None

        image = DEFAULT_IMAGE
        image_node = get("image")
        if image_node is not None:
            image = self.image(image_node, join(path, "image")) or DEFAULT_IMAGE
            source.placeholders.append((image, image_node, join(path, "image")))
        steps_node = get("steps")
        if steps_node is None:
            out.error(entry.key, join(path, "steps"), f"job `{entry.name}` has no `steps`",
                      hint="add `steps:` with at least one `run:`")
            steps: tuple[Step, ...] = ()
        else:
            steps = self.steps(steps_node, join(path, "steps"), source=source)
        needs_node = get("needs")
        if needs_node is not None:
            names = reading.strings(out, needs_node, join(path, "needs")) or ()
            source.needs = tuple(
                (name, item.position)
                for name, item in zip(names, _items(needs_node), strict=False)
            )
            source.needs_node = needs_node
        env_node = get("env")
        env = self.env(env_node, join(path, "env"), in_matrix_job=source)
        timeout = self.timeout(get("timeout"), join(path, "timeout"))
        retries_node = get("retries")
        retries = reading.integer(out, retries_node, join(path, "retries"), minimum=0,
                                  maximum=MAX_RETRIES) if retries_node is not None else None
        source.job = Job(
            name=entry.name,
            steps=steps,
            image=image,
            needs=tuple(name for name, _ in source.needs),
            env=env,
            secrets=self.secrets(get("secrets"), join(path, "secrets")),
            services=self.services(get("services"), join(path, "services"), source=source),
            matrix=matrix,
            timeout_seconds=timeout,
            retries=retries or 0,
            allow_failure=self.flag(get("allow_failure"), join(path, "allow_failure")),
            when=self.when(get("when"), join(path, "when")),
            share_workspace=self.flag(get("share_workspace"), join(path, "share_workspace")),
            is_finally=is_finally,
            position=entry.key.position,
            key_positions=_keys(node),
        )
        if source.job.retries and source.job.allow_failure and retries_node is not None:
            out.error(retries_node, join(path, "retries"),
                      retries_with_allow_failure_message(entry.name),
                      hint="a job that may fail need not be retried: drop one of the two")
        check_placeholders(out, job=source.job, uses=source.placeholders)
        return source

    def job_name(self, key: ScalarNode, path: str, *, has_matrix: bool) -> None:
        name = key.text
        limit = MAX_NAME_LENGTH - (MAX_MATRIX_SUFFIX_LENGTH if has_matrix else 0)
        if not _DNS_LABEL.fullmatch(name):
            self.out.error(
                key, path,
                f"job name `{name}` cannot become a Kubernetes name: use lowercase letters, "
                "digits and `-`, starting and ending with a letter or digit",
                hint=f"rename it to `{kubernetes_name(name)[:limit].rstrip('-')}`",
            )
        elif len(name) > limit:
            why = f" (a matrix job's variants add up to {MAX_MATRIX_SUFFIX_LENGTH} characters)" \
                if has_matrix else ""
            self.out.error(key, path,
                           f"job name `{name}` is {len(name)} characters; at most {limit} "
                           f"fit in a Kubernetes name{why}",
                           hint=f"rename it to `{name[:limit].rstrip('-')}`")

    def image(self, node: Node, path: str) -> str | None:
        image = reading.string(self.out, node, path)
        if image is None:
            return None
        if _WHITESPACE.search(PLACEHOLDER.sub("", image)):
            self.out.error(node, path, f"image `{image}` contains whitespace")
            return None
        if "${{" not in image:
            last = image.rsplit("/", 1)[-1]
            if "@" not in last and (":" not in last or last.endswith(":latest")):
                self.out.warn(node, path, f"image `{image}` is not pinned to a version",
                              hint="use a tag like `python:3.12` or a digest, so runs "
                                   "are repeatable")
        return image

    def steps(self, node: Node, path: str, *, source: JobSource | None = None) -> tuple[Step, ...]:
        items = reading.sequence(self.out, node, path)
        if items is None:
            return ()
        if not items.items:
            self.out.error(node, path, f"`{path}` is empty", hint="add at least one `run:`")
        if len(items.items) > MAX_STEPS_PER_JOB:
            self.out.error(node, path, f"`{path}` has {len(items.items)} steps, over the "
                                       f"limit of {MAX_STEPS_PER_JOB}")
        steps = []
        for index, item in enumerate(items.items):
            step = self.step(item, join(path, index), source=source)
            if step is not None:
                steps.append(step)
        return tuple(steps)

    def step(self, node: Node, path: str, *, source: JobSource | None) -> Step | None:
        out = self.out
        if isinstance(node, ScalarNode) and isinstance(node.value, str):
            # `- make test` is shorthand for `- run: make test`.
            script = reading.string(out, node, path)
            if script is not None:
                self.check_run(script, node, path, source=source)
            return Step(run=script or "", position=node.position)
        if not isinstance(node, MappingNode):
            out.error(node, path, f"`{path}` must be a script (a string) or a mapping with "
                                  f"`run`, got a {node.kind}",
                      hint="quote it" if isinstance(node, ScalarNode) else None)
            return None
        step = reading.mapping(out, node, path, allowed=STEP_KEYS)
        if step is None:
            return None
        run_entry = step.get("run")
        run: str | None = None
        if run_entry is None:
            out.error(step, join(path, "run"), f"step `{path}` has no `run`",
                      hint="every step runs a shell script: add `run: <command>`")
        elif isinstance(run_entry.value, ScalarNode | MappingNode):
            run = reading.string(out, run_entry.value, join(path, "run"))
            if run is not None:
                self.check_run(run, run_entry.value, join(path, "run"), source=source)
        else:
            out.error(run_entry.value, join(path, "run"), f"`{join(path, 'run')}` must be a "
                      "string, got a list", hint="write several commands as one block: `run: |`")
        name_entry, image_entry, env_entry = step.get("name"), step.get("image"), step.get("env")
        name = reading.string(out, name_entry.value, join(path, "name")) if name_entry else None
        image = self.image(image_entry.value, join(path, "image")) if image_entry else None
        if image is not None and image_entry is not None and source is not None:
            source.placeholders.append((image, image_entry.value, join(path, "image")))
        env = self.env(env_entry.value if env_entry else None, join(path, "env"),
                       in_matrix_job=source)
        return Step(run=run or "", name=name, image=image, env=env, position=step.position,
                    key_positions=_keys(step))

    def check_run(self, run: str, node: Node, path: str, *, source: JobSource | None) -> None:
        if "${{" not in run:
            return
        if source is None or not source.has_matrix:
            # Only a matrix job's `${{ matrix.KEY }}` is replaced; anything else would reach
            # the shell as it is, where `${{` is a syntax error.
            self.out.error(node, path, "`${{ }}` in `run` is replaced only in a matrix job",
                           hint="read event data from environment variables, e.g. "
                                "`$FERRY_BRANCH`")
            return
        source.placeholders.append((run, node, path))
        self.out.warn(node, path,
                      "avoid `${{ }}` in `run`: text pasted into a script is how injection "
                      "bugs start",
                      hint="read matrix values from `$MATRIX_<KEY>` (e.g. `$MATRIX_PYTHON`)")

    # -- small values -----------------------------------------------------------------------

    def flag(self, node: Node | None, path: str) -> bool:
        if node is None:
            return False
        return bool(reading.boolean(self.out, node, path))

    def timeout(self, node: Node | None, path: str) -> int | None:
        if node is None:
            return None
        return reading.duration(self.out, node, path, maximum=MAX_TIMEOUT_SECONDS)

    def env(self, node: Node | None, path: str, *,
            in_matrix_job: JobSource | None) -> Mapping[str, str]:
        if node is None:
            return _frozen({})
        env = reading.mapping(self.out, node, path)
        if env is None:
            return _frozen({})
        values: dict[str, str] = {}
        for entry in env.entries:
            entry_path = join(path, entry.name)
            self.env_name(entry.key, entry_path)
            value = reading.scalar_text(self.out, entry.value, entry_path)
            if value is None:
                continue
            values[entry.name] = value
            if in_matrix_job is not None:
                in_matrix_job.placeholders.append((value, entry.value, entry_path))
            elif "${{" in value:
                self.out.error(entry.value, entry_path,
                               "`${{ }}` can only be used in a matrix job's `image` and `env`")
        return _frozen(values)

    def env_name(self, node: ScalarNode, path: str) -> bool:
        if _ENV_NAME.fullmatch(node.text):
            return True
        self.out.error(node, path, f"`{node.text}` is not a valid environment variable name",
                       hint="use letters, digits and `_`, not starting with a digit")
        return False

    def secrets(self, node: Node | None, path: str) -> tuple[SecretRef, ...]:
        if node is None:
            return ()
        if isinstance(node, MappingNode):
            return self.secret_map(node, path)
        if not isinstance(node, SequenceNode):
            self.out.error(node, path, f"`{path}` must be a mapping `ENV: secret-name/key` or "
                                       "a list of `{env, secret, key}`")
            return ()
        return self.secret_list(node, path)

    def secret_map(self, node: MappingNode, path: str) -> tuple[SecretRef, ...]:
        """`secrets: {PYPI_TOKEN: pypi/token}`"""
        out = self.out
        refs: list[SecretRef] = []
        for entry in node.entries:
            entry_path = join(path, entry.name)
            valid = self.env_name(entry.key, entry_path)
            ref = reading.string(out, entry.value, entry_path)
            if ref is None:
                continue
            secret, slash, key = ref.partition("/")
            if not slash:
                out.error(entry.value, entry_path,
                          f"secret reference `{ref}` needs the form `secret-name/key`")
                continue
            if valid and self.secret_ref(entry.value, entry_path, secret=secret, key=key):
                refs.append(SecretRef(env=entry.name, secret=secret, key=key,
                                      position=entry.key.position))
        return tuple(refs)

    def secret_list(self, node: SequenceNode, path: str) -> tuple[SecretRef, ...]:
        """`secrets: [{env: PYPI_TOKEN, secret: pypi, key: token}]`"""
        out = self.out
        refs: list[SecretRef] = []
        for index, item in enumerate(node.items):
            item_path = join(path, index)
            ref_node = reading.mapping(out, item, item_path, allowed=SECRET_KEYS)
            if ref_node is None:
                continue
            fields: dict[str, str] = {}
            for key in SECRET_KEYS:
                found = ref_node.get(key)
                if found is None:
                    out.error(ref_node, join(item_path, key), f"`{item_path}` has no `{key}`")
                    continue
                value = reading.string(out, found.value, join(item_path, key))
                if value is not None:
                    fields[key] = value
            if len(fields) < len(SECRET_KEYS):
                continue
            env_entry = ref_node.get("env")
            if env_entry and not _ENV_NAME.fullmatch(fields["env"]):
                out.error(env_entry.value, join(item_path, "env"),
                          f"`{fields['env']}` is not a valid environment variable name")
                continue
            if self.secret_ref(ref_node, item_path, secret=fields["secret"], key=fields["key"]):
                refs.append(SecretRef(env=fields["env"], secret=fields["secret"],
                                      key=fields["key"], position=ref_node.position,
                                      key_positions=_keys(ref_node)))
        return tuple(refs)

    def secret_ref(self, node: Node, path: str, *, secret: str, key: str) -> bool:
        ok = True
        if not _DNS_SUBDOMAIN.fullmatch(secret) or len(secret) > 253:
            self.out.error(node, path, f"`{secret}` is not a valid Kubernetes Secret name",
                           hint="lowercase letters, digits, `-` and `.`")
            ok = False
        if not _SECRET_KEY.fullmatch(key):
            self.out.error(node, path, f"`{key}` is not a valid key of a Secret",
                           hint="letters, digits, `-`, `_` and `.`")
            ok = False
        return ok

    def services(self, node: Node | None, path: str, *,
                 source: JobSource) -> tuple[Service, ...]:
        if node is None:
            return ()
        out = self.out
        services_node = reading.mapping(out, node, path)
        if services_node is None:
            return ()
        services = []
        for entry in services_node.entries:
            entry_path = join(path, entry.name)
            if not _DNS_LABEL.fullmatch(entry.name) or len(entry.name) > MAX_NAME_LENGTH:
                out.error(entry.key, entry_path,
                          f"service name `{entry.name}` cannot become a container name",
                          hint=f"rename it to `{kubernetes_name(entry.name)}`")
            service = reading.mapping(out, entry.value, entry_path, allowed=SERVICE_KEYS)
            if service is None:
                continue
            image_entry = service.get("image")
            image = None
            if image_entry is None:
                out.error(service, join(entry_path, "image"),
                          f"service `{entry.name}` has no `image`")
            else:
                image = self.image(image_entry.value, join(entry_path, "image"))
                if image is not None:
                    source.placeholders.append((image, image_entry.value,
                                                join(entry_path, "image")))
            env_entry = service.get("env")
            env = self.env(env_entry.value if env_entry else None, join(entry_path, "env"),
                           in_matrix_job=source)
            command: tuple[str, ...] = ()
            command_entry = service.get("command")
            if command_entry is not None:
                command_path = join(entry_path, "command")
                items = reading.sequence(out, command_entry.value, command_path)
                command_items = items.items if items else ()
                for index, item in enumerate(command_items):
                    text = reading.scalar_text(out, item, join(command_path, index))
                    if text is None:
                        continue
                    command += (text,)
                    # The planner replaces `${{ matrix.KEY }}` here too.
                    source.placeholders.append((text, item, join(command_path, index)))
            services.append(Service(name=entry.name, image=image or "", env=env,
                                    command=command, position=entry.key.position,
                                    key_positions=_keys(service)))
        return tuple(services)

    def when(self, node: Node | None, path: str) -> When | None:
        if node is None:
            return None
        out = self.out
        when = reading.mapping(out, node, path, allowed=WHEN_KEYS)
        if when is None:
            return None
        if not when.entries:
            out.warn(when, path, f"`{path}` is empty, so it always holds")
        events: list[EventKind] = []
        event_entry = when.get("event")
        if event_entry is not None:
            event_path = join(path, "event")
            names = reading.strings(out, event_entry.value, event_path) or ()
            nodes = _items(event_entry.value)
            for name, item in zip(names, nodes, strict=False):
                try:
                    kind = EventKind(name)
                except ValueError:
                    kinds = sorted(produced.value for produced in PRODUCED_EVENTS)
                    out.error(item, event_path, f"unknown event `{name}`",
                              hint=reading.suggestion(name, kinds)
                              or f"events are: {', '.join(kinds)}")
                    continue
                if kind not in PRODUCED_EVENTS:
                    out.error(item, event_path, f"nothing starts a run with event `{name}`",
                              hint=_UNPRODUCED_HINTS.get(kind))
                    continue
                events.append(kind)
        patterns = {key: self.patterns(when.get(key), join(path, key))
                    for key in ("branch", "tag", "paths")}
        return When(events=tuple(dict.fromkeys(events)), branch=patterns["branch"],
                    tag=patterns["tag"], paths=patterns["paths"], position=when.position,
                    key_positions=_keys(when))

    def patterns(self, entry: Entry | None, path: str) -> Patterns:
        if entry is None:
            return Patterns()
        values = reading.strings(self.out, entry.value, path) or ()
        include: list[str] = []
        exclude: list[str] = []
        for value, item in zip(values, _items(entry.value), strict=False):
            pattern = value.strip()
            if pattern.startswith("!"):
                pattern = pattern[1:].strip()
                target = exclude
            else:
                target = include
            if not pattern:
                self.out.error(item, path, f"`{value}` is an empty pattern")
                continue
            target.append(pattern)
        return Patterns(include=tuple(include), exclude=tuple(exclude))

    def concurrency(self, root: MappingNode) -> Concurrency:
        out = self.out
        entry, cancel_entry = root.get("concurrency"), root.get("cancel_in_progress")
        limit: int | None = None
        cancel: bool | None = None
        position = root.position
        keys: Mapping[str, Position] = MappingProxyType({})
        if entry is not None:
            position = entry.key.position
            value = entry.value
            if isinstance(value, MappingNode):
                reading.mapping(out, value, "concurrency", allowed=CONCURRENCY_KEYS)
                keys = _keys(value)
                limit_entry, inner_cancel = value.get("limit"), value.get("cancel_in_progress")
                if limit_entry is not None:
                    limit = reading.integer(out, limit_entry.value, "concurrency.limit",
                                            minimum=1)
                if inner_cancel is not None:
                    cancel = reading.boolean(out, inner_cancel.value,
                                             "concurrency.cancel_in_progress")
                    if cancel_entry is not None:
                        out.error(cancel_entry.key, "cancel_in_progress",
                                  "`cancel_in_progress` is set both at the top level and in "
                                  "`concurrency`", hint="keep one of them")
            else:
                limit = reading.integer(out, value, "concurrency", minimum=1)
        if cancel_entry is not None and cancel is None:
            cancel = reading.boolean(out, cancel_entry.value, "cancel_in_progress")
        return Concurrency(limit=limit, cancel_in_progress=bool(cancel), position=position,
                           key_positions=keys)


def _value(entry: Entry | None) -> Node | None:
    return entry.value if entry is not None else None


def _items(node: Node) -> tuple[Node, ...]:
    """The nodes behind a "string or list of strings" value, to point at each one."""
    if isinstance(node, MappingNode):
        return ()
    if isinstance(node, ScalarNode):
        return (node,)
    return node.items
