"""Batch step: many recordings -> one CSV each (and features), a run ledger; resumable, local processes or Dask.

```
libreface batch interviews/ -o study/                       # local worker processes, one per core
libreface batch manifest.csv -o study/ --dask-local 8       # a Dask LocalCluster on 127.0.0.1
libreface batch manifest.csv -o study/ --scheduler tcp://head:8786   # a running Dask cluster (docs/slurm.md)
```

Inputs are files, folders (`--recursive`: with their subfolders), `.txt` lists, or a manifest CSV with a `path`
column; its other columns (participant, session, ...) are metadata carried into the ledger and, by `libreface
collect`, into the dataset. An optional `recording` column names the outputs; otherwise a recording is named after
its file, and equal names from different folders get the shortest folder prefix that tells them apart
(`p01/session1.mp4`, `p02/session1.mp4` -> `p01__session1`, `p02__session1`; `libreface.outputs.names`, shared with
the `libreface` command and the desktop app). Names, once in the ledger, never change.

OUTDIR holds:

```
csv/<recording>.csv              one per recording, renamed into place only when complete
features/<recording>.parquet     with --features
ledger.jsonl                     the run ledger: one JSON line per change, appended and fsync'ed (source of truth)
ledger.csv                       the ledger's latest state, one row per recording, rewritten atomically
.work/<recording>/               attempts in progress: `.partial` files, and one `attempt-*` file per attempt
                                 holding its worker's host:pid; removed when the recording is done or failed
.lock                            held by the coordinating process while a batch runs
```

Only the coordinating process writes the ledger. The ledger is append-only: a crash can tear at most its last line,
which the reader drops. A second `libreface batch` on the same OUTDIR is refused while the first holds `.lock`.
Workers write each attempt to its own file under `.work/` and rename it into `csv/` when it is complete, so an
attempt that dies, or a duplicate that Dask runs after losing track of a worker, never leaves a half-written CSV.

Re-running the same command skips a recording when its ledger status is `done`, its outputs exist, and the input
file (size, modification time), the output settings and the model and landmarker sha256 are unchanged; every other
recording (`failed`, `partial`, `pending`, new, changed) is analysed again from its first frame, so its outputs never
depend on where an earlier run was stopped.

Modules, one step each: `records` (settings, jobs, outcomes, report; the folder layout), `manifest` (inputs ->
named recordings), `locks` (OUTDIR/.lock), `ledger` (ledger.jsonl / ledger.csv), `worker` (one recording -> its
outputs), `executors` (local process pool, Dask), `coordinator` (`run_batch`: skipping, scheduling, signals) and
`command` (`libreface batch`).
"""

from .command import batch_command, build_parser
from .coordinator import run_batch
from .ledger import read_ledger
from .manifest import read_manifest, resolve_recordings
from .records import LEDGER_COLUMNS, STATUSES, BatchReport, BatchSettings, Outcome, Recording

__all__ = [
    "LEDGER_COLUMNS",
    "STATUSES",
    "BatchReport",
    "BatchSettings",
    "Outcome",
    "Recording",
    "batch_command",
    "build_parser",
    "read_ledger",
    "read_manifest",
    "resolve_recordings",
    "run_batch",
]
