"""Running a snippet in fresh interpreters, to show placement does not depend on the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def outputs_under_hash_seeds(script: str, seeds: tuple[str, ...] = ("0", "4242")) -> set[str]:
    """The stripped stdout of ``script`` run once per ``PYTHONHASHSEED`` in ``seeds``.

    Each run is a new interpreter with the source tree and the tests on its path
    (so a script may import ``tests...`` data); each is bounded by a 60 s timeout.
    """
    outputs = set()
    for seed in seeds:
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=ROOT,
        )
        outputs.add(done.stdout.strip())
    return outputs
