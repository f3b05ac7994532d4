"""Running ``deepvis`` commands through the CLI's own entry point, ``deepvis.cli.main``, in this
process, with what they print captured: the exit code, stdout and stderr a user's shell sees.

They ran as subprocesses once, and each paid the import of torch and deepvis (2 s here) for
commands that take a tenth of that. The process boundary itself (``python -m deepvis``, the
compute thread stopped at exit, nothing but the error line on stderr) is tested where it is the
point: tests/cli/test_cli_errors.py, the GUI commands of test_hostile_inputs.py, test_gui.py and
tests/live/test_computethread.py run real processes.
"""

import contextlib
import io
import os
import warnings
from dataclasses import dataclass


@dataclass
class Finished:
    """What a finished command left: as ``subprocess.CompletedProcess`` has it."""

    args: list
    returncode: int
    stdout: str
    stderr: str


def run_command(argv, cwd) -> Finished:
    """``deepvis ARGV`` run in ``cwd``: its exit code and what it printed."""
    from deepvis.cli import main

    argv = [str(a) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    # The CLI silences library warnings for its one-line contract; the filters come back after.
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        os.chdir(cwd)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            os.chdir(before)
    return Finished(argv, code, out.getvalue(), err.getvalue())


def run_commands(commands: dict, cwd) -> dict:
    """``{name: argv}`` -> ``{name: Finished}``, one after another (``testnets:Factory`` models
    import from tests/, which is on the path)."""
    return {name: run_command(argv, cwd) for name, argv in commands.items()}
