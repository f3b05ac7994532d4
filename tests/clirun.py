"""Running ``deepvis`` commands as a user would, a subprocess each, several at once: every
command pays torch's import, so CLI test modules start theirs together in a fixture."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def run_commands(commands: dict, cwd, workers: int = 3, timeout: float = 240) -> dict:
    """``{name: argv}`` -> ``{name: CompletedProcess}``; tests/ is importable by the commands
    (``testnets:Factory`` models), and each uses one thread, as several share the cores."""
    env = {k: v for k, v in os.environ.items() if k != "DEEPVIS_DEBUG"}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([TESTS_DIR, env.get("PYTHONPATH", "")])

    def run(argv):
        return subprocess.run([sys.executable, "-m", "deepvis", *map(str, argv)], capture_output=True, text=True,
                              cwd=cwd, env=env, timeout=timeout)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(commands, pool.map(run, commands.values())))
