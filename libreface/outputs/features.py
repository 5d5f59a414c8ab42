"""Features output: each analysed face's feature vector, crash-safe, in Parquet or NPZ, and reading it back."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..results import FrameResult, OutputLabels
from .atomic import AtomicSink, open_error
from .schema import feature_columns, provenance

log = logging.getLogger(__name__)

FEATURE_FORMATS: tuple[str, ...] = (".npz", ".parquet")
"""File suffixes `FeatureSink` understands."""
FEATURE_KEY_COLUMNS: tuple[str, ...] = ("frame", "face_id", "person_id", "timestamp")


def _feature_format(path: Path) -> str:
    name = path.name[: -len(".partial")] if path.name.endswith(".partial") else path.name
    suffix = Path(name).suffix.lower()
    if suffix not in FEATURE_FORMATS:
        raise ValueError(f"{path}: unknown features format {suffix or '(no suffix)'!r}; "
                         f"choose one of: {', '.join(FEATURE_FORMATS)}")
    return suffix


def _import_pyarrow():
    from ..extras import require

    what = "writing .parquet features (or write .npz)"
    return require("pyarrow", "parquet", what), require("pyarrow.parquet", "parquet", what)


class FeatureSink(AtomicSink):
    """Writes each analysed face's feature vector to its own file; a context manager (see `AtomicSink`).

    One row per face with `success=True` (faceless frames and failed faces have no features),
    keyed by (`frame`, `face_id`) as in the native CSV: `frame` is the 0-based decode index (the
    OpenFace CSV's `frame` is this plus 1). The format follows the suffix:

    * `.npz`: arrays `frame`, `face_id`, `person_id` (int64, (N,)), `timestamp` (float64 seconds,
      (N,)), `features` (float32, (N, D)) and `libreface` (JSON provenance, 0-d str). Kept in memory
      and written at close, so prefer Parquet for hours of video.
    * `.parquet`: columns `frame, face_id, person_id` (int64), `timestamp` (float64) and
      `features` (fixed-size list of D float32), streamed in row groups of `row_group_rows` rows;
      `read_features` expands it to `f0 .. f{D-1}`, and with plain pandas
      `np.stack(pd.read_parquet(path)["features"])` gives the (N, D) matrix. One list column, not D
      plain ones: a Parquet writer keeps the metadata of every column chunk until the footer is
      written, so D columns would make memory grow with the video's length (~0.4 MB per row group).
      Provenance in the schema metadata key `libreface`.

    Like `CsvSink`, it writes `<path>.partial` and renames it to `path` on a normal exit; on an
    exception the `.partial` is completed into a readable file and left in place. With
    `resume_before_frame=N`, the rows of frames before N are carried over from an existing
    `.partial` (the companion of `CsvSink(resume=True)`, whose `resume_from_frame` gives N).

    Raises:
        ValueError: unknown suffix, or the model has no features output.
        OutputError: `path` cannot be written, or another run is writing it (the message names its pid).
    """

    def __init__(self, path: str | os.PathLike, labels: OutputLabels, *, row_group_rows: int = 1000,
                 resume_before_frame: int | None = None):
        self.path = Path(path)
        self.format = _feature_format(self.path)
        if labels.feature_dim <= 0:
            raise ValueError(f"model {labels.model!r} has no features output (feature_dim={labels.feature_dim})")
        self.labels = labels
        self.row_group_rows = max(1, int(row_group_rows))
        self.rows_written = 0
        self._keys: dict[str, list] = {k: [] for k in FEATURE_KEY_COLUMNS}
        self._features: list[np.ndarray] = []
        self._chunks: list[tuple[dict[str, np.ndarray], np.ndarray]] = []  # npz: flushed buffers
        self._writer = None
        self._meta = json.dumps(provenance(labels, "features"))
        self._resume_before_frame = resume_before_frame
        super().__init__(self.path)

    def _start(self) -> None:
        carried = None
        resume_before_frame = self._resume_before_frame
        if resume_before_frame is not None and self.partial_path.is_file():
            try:
                carried = read_features(self.partial_path)
                carried = carried[carried["frame"] < resume_before_frame]
            except Exception as e:  # an unreadable partial (killed mid-write): start over, say so
                log.warning("%s: cannot carry over earlier features (%s); they restart at frame %d",
                            self.partial_path, e, resume_before_frame)
        try:
            if self.format == ".parquet":
                pa, pq = _import_pyarrow()
                fields = [pa.field("frame", pa.int64()), pa.field("face_id", pa.int64()),
                          pa.field("person_id", pa.int64()), pa.field("timestamp", pa.float64())]
                fields.append(pa.field("features", pa.list_(pa.float32(), self.labels.feature_dim)))
                self._schema = pa.schema(fields, metadata={"libreface": self._meta})
                self._writer = pq.ParquetWriter(str(self.partial_path), self._schema)
            else:
                with open(self.partial_path, "wb"):  # claim the name now, so errors show up early
                    pass
        except OSError as e:
            raise open_error(self.path, e) from None
        if carried is not None and len(carried):
            for k in FEATURE_KEY_COLUMNS:
                self._keys[k].extend(carried[k].tolist())
            self._features.extend(carried[feature_columns(self.labels)].to_numpy(np.float32))
            self._flush_buffer()

    def append(self, result: FrameResult) -> None:
        """Add the features of every analysed face of one frame."""
        if not self._open:
            raise ValueError(f"{self.path}: append() after close()")
        d = self.labels.feature_dim
        for face in result.faces:
            if not face.success:
                continue
            feats = np.asarray(face.features, dtype=np.float32).ravel()
            if feats.size != d:
                raise ValueError(f"frame {result.frame}, face {face.face_id}: features has {feats.size} values, "
                                 f"expected {d}")
            self._keys["frame"].append(int(result.frame))
            self._keys["face_id"].append(int(face.face_id))
            self._keys["person_id"].append(int(face.person_id))
            self._keys["timestamp"].append(float(result.timestamp_s))
            self._features.append(feats)
        if len(self._features) >= self.row_group_rows:
            self._flush_buffer()

    def _take_buffer(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        keys = {k: np.asarray(v, dtype=np.float64 if k == "timestamp" else np.int64) for k, v in self._keys.items()}
        feats = np.stack(self._features) if self._features else np.zeros((0, self.labels.feature_dim), np.float32)
        for v in self._keys.values():
            v.clear()
        self._features.clear()
        return keys, feats

    def _flush_buffer(self) -> None:
        keys, feats = self._take_buffer()
        if not len(feats):
            return
        self.rows_written += len(feats)
        if self._writer is None:
            self._chunks.append((keys, feats))
            return
        pa, _ = _import_pyarrow()
        arrays = [pa.array(keys[k]) for k in FEATURE_KEY_COLUMNS]
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(feats.ravel()), feats.shape[1]))
        try:
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        except OSError as e:
            raise OutputError(f"{self.partial_path}: cannot write ({e.strerror or e}); free some disk space") from None

    def _finish(self) -> None:
        """Turn everything appended into a complete, fsync'ed `<path>.partial`."""
        self._flush_buffer()
        try:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                writer.close()
                with open(self.partial_path, "rb") as f:
                    os.fsync(f.fileno())
            else:
                chunks, self._chunks = self._chunks, []
                keys = {k: np.concatenate([c[0][k] for c in chunks]) if chunks
                        else np.zeros(0, np.float64 if k == "timestamp" else np.int64) for k in FEATURE_KEY_COLUMNS}
                feats = (np.concatenate([c[1] for c in chunks]) if chunks
                         else np.zeros((0, self.labels.feature_dim), np.float32))
                with open(self.partial_path, "wb") as f:
                    np.savez(f, **keys, features=feats, libreface=np.array(self._meta))
                    f.flush()
                    os.fsync(f.fileno())
        except OSError as e:
            raise OutputError(f"{self.partial_path}: cannot write ({e.strerror or e}); free some disk space") from None


def read_features(path: str | os.PathLike):
    """Read a features file written by `FeatureSink` (also its `.partial`) into a DataFrame.

    Returns:
        Columns `frame, face_id, person_id` (int64), `timestamp` (float64 s), `f0 .. f{D-1}`
        (float32); `df.attrs["libreface"]` holds the provenance.
    """
    import pandas as pd

    path = Path(path)
    fmt = _feature_format(path)
    if fmt == ".npz":
        with np.load(path, allow_pickle=False) as z:
            feats = z["features"]
            data = {k: z[k] for k in FEATURE_KEY_COLUMNS}
            meta = json.loads(str(z["libreface"])) if "libreface" in z.files else {}
        data.update({f"f{i}": feats[:, i] for i in range(feats.shape[1])})
        df = pd.DataFrame(data)
    else:
        _, pq = _import_pyarrow()
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"libreface")
        meta = json.loads(raw) if raw else {}
        if "features" in table.column_names:  # the list column -> f0 .. f{D-1}
            col = table.column("features").combine_chunks()
            dim = col.type.list_size
            feats = col.flatten().to_numpy().reshape(-1, dim)  # (0, dim) float32 for an empty file too
            df = table.drop_columns(["features"]).to_pandas()
            df = pd.concat([df, pd.DataFrame(feats, columns=[f"f{i}" for i in range(dim)])], axis=1)
        else:  # files written before the list column: one column per dimension
            df = table.to_pandas()
    df.attrs["libreface"] = meta
    return df
