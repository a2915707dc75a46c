"""Plain default values that code outside the settings loader needs as well.

`ci.settings` uses them as its groups' defaults. They live here, away from the pydantic
models, so that a path which reads no settings (`ferry run` on the host engine) does not pay
for importing pydantic (about 100 ms with bytecode on the development machine, as much as
the rest of `ferry run`'s imports together).
This module imports nothing.
"""

from __future__ import annotations

# GitHub's documented maximum payload; bigger deliveries are cut by GitHub itself.
MAXIMUM_PAYLOAD_BYTES = 25 * 1024 * 1024
# Bytes of one step's log kept in the archive (`archive.max_log_bytes`' default): a step
# printing more is almost always in a loop, and a bigger log would only be downloaded.
DEFAULT_MAX_LOG_BYTES = 50 * 1024 * 1024
# PATH of steps on the local backend's `host` engine (`local.step_path`'s default).
STEP_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
