"""SIGKILL a run on SQLite many times (default 200) and report what survived.

The same trial as ``tests/test_crash.py`` (see ``tests/_crash_child.py``): a forked
child runs a 50-step graph with a checkpoint after every step, appending each step to
a side-effect ledger; it is killed with SIGKILL when the ledger reaches a random
step; then ``PRAGMA integrity_check``, ``latest()`` must be a complete checkpoint,
resuming in this process must reach the uninterrupted run's final state, and the
ledger must show no committed step ran twice. Any violation stops the script with
the failing trial's seed; otherwise it prints the figures.

Run: ``python benchmarks/crash.py [kills] [seed]``.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import _crash_child as child

    kills = int(argv[0]) if argv else 200
    seed = int(argv[1]) if len(argv) > 1 else random.randrange(2**32)
    rng = random.Random(seed)
    trials = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tg-crash-") as tmp, child.Zygote() as zygote:
        reference = child.reference_state(Path(tmp))
        for n in range(kills):
            try:
                trials.append(child.trial(Path(tmp) / f"kill{n}", rng, reference, zygote))
            except AssertionError as exc:
                print(f"FAILED at kill {n} (seed {seed}): {exc}")
                raise SystemExit(1) from exc
    elapsed = time.perf_counter() - start

    killed = [t for t in trials if not t.exited]
    committed = Counter(t.committed for t in killed)
    repeats = Counter(len(t.repeated) for t in trials)
    print(f"{len(trials)} trials in {elapsed:.1f} s (seed {seed}), {child.STEPS}-step runs")
    print(f"  killed mid-run:                    {len(killed)}")
    print(f"  finished before the kill:          {len(trials) - len(killed)}")
    print(f"  killed before the first checkpoint: {committed[0]}")
    print(f"  distinct committed step counts:    {len(committed)} (of 0..{child.STEPS + 1})")
    print("  PRAGMA integrity_check ok:         all")
    print("  latest() complete, resume reached the reference state: all")
    print(f"  committed steps run again:         0 (in {len(trials)} trials)")
    print(
        f"  in-flight step repeated:           {repeats[1]} trials; none in {repeats[0]} "
        "(killed before its side effect or after its commit)"
    )
    took = [t.resume_seconds * 1000 for t in trials]
    print(
        f"  check + resume to the end:         median {statistics.median(took):.1f} ms, "
        f"max {max(took):.1f} ms"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
