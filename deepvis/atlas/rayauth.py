"""Connecting to a Ray cluster that wants a token (Ray's token authentication).

The sequence users meet: a local ``ray.init()`` (a first, small atlas) turns token
authentication on and writes ``~/.ray/auth_token``; ``ray start --head`` then finds that
token and makes its cluster require it; but ``ray.init(address=...)`` sends the token only
when ``RAY_AUTH_MODE=token`` is set, so the build failed after ~20 s of Ray's log lines
("InvalidAuthToken"). Before connecting, one call to the cluster's GCS (it answers at once,
accepted or not) says whether it wants a token; then:

- it accepts us as we are: nothing changes (a cluster without authentication, or one whose
  token this process already sends);
- it wants a token, ``RAY_AUTH_MODE`` is unset and Ray finds one (``RAY_AUTH_TOKEN``,
  ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``, in Ray's order): token mode is turned on for
  this process, as Ray itself does for a local cluster when a token exists, and asked again;
- otherwise one error says which token was missing or refused and what to do. The user's
  explicit ``RAY_AUTH_MODE`` is never changed.

Turning token mode on for a cluster that does not want it is not harmless (its actors die:
tried), hence the question first instead of following the token file alone.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager

from deepvis.errors import DeepvisError

MODE = "RAY_AUTH_MODE"
PROBE_TIMEOUT_S = 8.0  # the GCS answers in milliseconds; a port that is not a GCS may never answer
DOCS = "https://docs.ray.io/en/latest/ray-security/token-auth.html"


def prepare_token_auth(address: str) -> None:
    """Make ``ray.init(address=address)`` send the token the cluster expects, or raise one
    DeepvisError that says what is wrong. An address that is not a GCS host:port (ray://,
    "auto") is left to Ray."""
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://") or not sep or not port.isdigit():
        return
    try:
        from ray._raylet import AuthenticationTokenLoader  # noqa: F401
        from ray.exceptions import AuthenticationError  # noqa: F401
    except ImportError:  # a Ray before 2.52 has no token authentication
        return
    gcs = f"{host or '127.0.0.1'}:{port}"
    if _refusal(gcs) is None:
        return
    chosen = os.environ.get(MODE)
    if chosen is not None and chosen.lower() != "token":
        raise DeepvisError(f"the Ray cluster at {address} requires a token, and {MODE}={chosen} says not to send "
                           f"one: unset {MODE} (or set it to token) with the cluster's token in ~/.ray/auth_token, "
                           f"RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH")
    source = token_source()
    if source is None:
        raise DeepvisError(f"the Ray cluster at {address} requires a token and none was found: copy it (ray "
                           f"get-auth-token on the head node) to ~/.ray/auth_token, or set RAY_AUTH_TOKEN or "
                           f"RAY_AUTH_TOKEN_PATH ({DOCS})")
    if chosen is None:
        _turn_on_token_mode()
        if _refusal(gcs) is None:
            return
    raise DeepvisError(f"the Ray cluster at {address} refused the token from {source}: it was started with "
                       f"another one; use the head node's (ray get-auth-token there) ({DOCS})")


def token_source() -> str | None:
    """Where Ray would take a token from, in its own order, or None when it finds none."""
    from ray._raylet import AuthenticationTokenLoader

    if not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        return None
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    return os.path.join(os.path.expanduser("~"), ".ray", "auth_token")


def _turn_on_token_mode() -> None:
    """What Ray does for a local cluster when a token exists (authentication_token_setup):
    the mode in the environment (child processes see it too), its config and token cache
    reread."""
    from ray._raylet import AuthenticationTokenLoader, Config

    os.environ[MODE] = "token"
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _refusal(gcs: str) -> str | None:
    """Ask the GCS at ``gcs`` for its cluster id as this process would connect: None when it
    answers, the reason when it refuses us for want of a token. Ray's C++ client logs its
    refusal on stderr; it goes to a scratch file instead of the terminal."""
    from ray.exceptions import AuthenticationError

    outcome: dict = {}

    def ask():
        from ray._raylet import GcsClient

        try:
            GcsClient(address=gcs)
        except AuthenticationError as exc:
            outcome["refused"] = str(exc).split(". Note:")[0]
        except Exception as exc:  # noqa: BLE001 (not a GCS, another Ray version: ray.init says it better)
            outcome["other"] = exc

    with _stderr_aside():
        worker = threading.Thread(target=ask, daemon=True)
        worker.start()
        worker.join(PROBE_TIMEOUT_S)
    if worker.is_alive():
        raise DeepvisError(f"the Ray cluster at {gcs} did not answer within {PROBE_TIMEOUT_S:.0f} s (is it the "
                           f"head node's GCS port, the one ray start --head --port chose?)")
    return outcome.get("refused")


@contextmanager
def _stderr_aside():
    """The process's file descriptor 2 into a scratch file for the block (C++ logs bypass
    sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
