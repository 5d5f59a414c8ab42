"""Report step: results CSV -> one self-contained HTML report per recording (`libreface report`, `--report`).

```
libreface report out.csv                     # out.html next to it
libreface video.mp4 -o out.csv --report      # analyse, then the same report
libreface batch videos/ -o study/ --report   # study/reports/<recording>.html
```

The CSV is read by `libreface.outputs.reader` (either layout -> canonical native table, shared with `libreface elan`).
Modules, one step each: `summaries` (the numbers, pure pandas), `figures` (matplotlib -> inline SVG), `provenance`
(model, sha256, options from the caller, a batch ledger or the `.summary.json` sidecar), `html` (the page), `build`
(`make_report`: assemble and write atomically), `command` (argparse). Needs matplotlib (the `report` extra).
"""

from .build import default_output, make_report, render
from ..outputs.reader import Results, read_results

__all__ = ["Results", "default_output", "make_report", "read_results", "render"]
