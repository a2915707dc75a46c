"""One real Gitea on 127.0.0.1: its app.ini, its start-up, and its stop by pid.

The binary comes from `tests/gitea/build`; everything it writes (SQLite database, bare
repositories, logs) lives in one directory of the test session. The settings are the few a
test forge needs, each with the reason it is there.
"""

from __future__ import annotations

import getpass
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.cluster.processes import Component, free_port, wait_until

ADMIN = "ferry-admin"
# Generous: Gitea answers in about 2 s on an idle machine; a shared 2-core one may be slower.
START_SECONDS = 120.0
COMMAND_SECONDS = 120.0
_TOKEN = re.compile(r"\b[0-9a-f]{40}\b")


def app_ini(*, directory: Path, port: int, static_root: Path) -> str:
    """The configuration: a locked installation on SQLite, webhooks allowed to 127.0.0.1."""
    return f"""\
APP_NAME = Ferry test forge
RUN_MODE = prod
RUN_USER = {getpass.getuser()}
WORK_PATH = {directory}
; The suite may run as root (CI containers); Gitea refuses that unless told.
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {port}
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:{port}/
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = {directory}/data
; Built without the bindata tag: templates and assets are read from the module's directory.
STATIC_ROOT_PATH = {static_root}

[database]
DB_TYPE = sqlite3
PATH = {directory}/data/gitea.db

[repository]
ROOT = {directory}/repositories
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = {secrets.token_hex(16)}

[service]
DISABLE_REGISTRATION = true
DEFAULT_ALLOW_CREATE_ORGANIZATION = true

[webhook]
; Without it every delivery to 127.0.0.1 is refused, and only Gitea's log says so.
ALLOWED_HOST_LIST = loopback
; The receiver reads the spec from Gitea and creates a PipelineRun before it answers.
DELIVER_TIMEOUT = 60

[queue]
; The default (level) queue delays each delivery by 2-3 s.
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[actions]
ENABLED = false

[oauth2]
; Gitea is the OAuth2 provider of the sign-in tests (tests/gitea/oauth.py).
ENABLED = true

[mailer]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[cron.update_checker]
ENABLED = false

[log]
MODE = console
LEVEL = info
ROOT_PATH = {directory}/log
"""


@dataclass
class GiteaServer:
    """Start with `start()`; `url` and `admin_token` then work; `stop()` stops it by pid."""

    binary: Path
    static_root: Path
    directory: Path
    port: int = field(default_factory=free_port)
    admin_token: str = ""
    component: Component | None = None
    started_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.directory / "app.ini"

    @property
    def log_path(self) -> Path:
        return self.directory / "gitea.log"

    def _environment(self) -> dict[str, str]:
        # Gitea runs git; its HOME (git's global config) is the server's own.
        home = self.directory / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
                "GITEA_WORK_DIR": str(self.directory), "USER": getpass.getuser()}

    def command(self, *args: str) -> str:
        """Run a `gitea` subcommand against this installation; its stdout."""
        argv = [str(self.binary), *args, "--config", str(self.config),
                "--work-path", str(self.directory)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=COMMAND_SECONDS, env=self._environment(),
                              cwd=self.directory)
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> None:
        started = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(app_ini(directory=self.directory, port=self.port,
                                       static_root=self.static_root))
        self.command("migrate")
        printed = self.command(
            "admin", "user", "create", "--admin", "--username", ADMIN,
            "--password", secrets.token_urlsafe(16), "--email", f"{ADMIN}@example.com",
            "--must-change-password=false", "--access-token", "--access-token-scopes", "all")
        tokens = _TOKEN.findall(printed)
        if not tokens:
            raise AssertionError(f"no access token in `gitea admin user create`'s output:\n"
                                 f"{printed}")
        self.admin_token = tokens[-1]
        self.component = Component(
            name="gitea",
            argv=[str(self.binary), "web", "--config", str(self.config),
                  "--work-path", str(self.directory)],
            log_path=self.log_path, env=self._environment(), cwd=self.directory)
        self.component.start()
        wait_until(self._answers, what="Gitea's /api/v1/version", timeout=START_SECONDS,
                   watching=[self.component])
        self.started_seconds = time.monotonic() - started

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/version", timeout=5.0).status_code == 200
        except httpx.TransportError:
            return False

    def version(self) -> str:
        answer = httpx.get(f"{self.url}/api/v1/version", timeout=10.0)
        answer.raise_for_status()
        version: str = answer.json()["version"]
        return version

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()
