"""Run makeflux's Jinja-contact tests against Jinja's newest release on PyPI.

pyproject pins jinja2 below the next minor release, because makeflux relies on a few of
Jinja's internals (makeflux/jinja_internals.py). This script shows a break before users see
it: it installs the newest jinja2 (pre-releases included, ignoring the pin) into a scratch
directory put first on PYTHONPATH, prints which contacts still fit, and runs the tests that
compare makeflux's use of Jinja with Jinja's own behaviour and with makejinja's output.
Exit status: 0 all fit and pass, 1 something broke, 2 the newest Jinja could not be installed
(no package index reachable).

    python scripts/check_newest_jinja.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS = (
    "tests/unit/test_jinja_internals.py",
    "tests/commands/test_dropin.py",
    "tests/unit/test_reuse.py",
)


def run(args: list[str], **kwargs: object) -> int:
    print("+", " ".join(args), flush=True)
    return subprocess.run(args, check=False, **kwargs).returncode  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="install the newest jinja2 here and keep it")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="makeflux-newest-jinja-") as scratch:
        target = options.keep or Path(scratch)
        status = run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                *("--pre", "--upgrade", "--target", str(target), "jinja2", "markupsafe"),
            ]
        )
        if status != 0:
            print("could not install the newest jinja2", file=sys.stderr)
            return 2
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), str(REPO_ROOT / "src")]))
        version = subprocess.run(
            [
                sys.executable,
                "-c",
                "import jinja2; print(jinja2.__version__, 'from', jinja2.__file__)",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        print(f"newest jinja2 on the index: {version}", flush=True)
        contacts = run([sys.executable, "-m", "makeflux.jinja_internals"], env=env, cwd=REPO_ROOT)
        tests = run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *TESTS],
            env=env,
            cwd=REPO_ROOT,
        )
        return 0 if contacts == 0 and tests == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
