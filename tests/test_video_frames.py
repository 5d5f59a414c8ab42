"""`distill.data.videos`: unlabelled frames sampled from videos, prepared with the runtime's alignment, kept out of
`train` by `build_tables`, and offered to MAE pretraining through `TrainConfig.extra_train`."""

from __future__ import annotations

import numpy as np
import pytest

RATE, N_FRAMES = 10, 30  # the synthetic video: 3 s at 10 frames per second


def _write_blank_video(path, n=N_FRAMES, rate=RATE):
    """A face-free MJPG .avi written with OpenCV: a flat grey frame whose brightness is 40 + 6 * frame index."""
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), rate, (64, 48))
    assert w.isOpened(), "OpenCV cannot write MJPG"
    for i in range(n):
        w.write(np.full((48, 64, 3), 40 + 6 * i, np.uint8))
    w.release()
    return path


def test_sample_indices_first_frame_at_or_after_each_tick():
    from distill.data.videos import sample_indices

    t25 = np.arange(50) / 25  # 2 s at 25 fps: ticks every 0.5 s -> frames at 0, 0.52, 1.0, 1.52 s
    assert sample_indices(t25, 2.0) == [0, 13, 25, 38]
    assert sample_indices(t25 + 7.3, 2.0) == [0, 13, 25, 38]  # ticks start at the first frame's timestamp
    assert sample_indices([0.0, 0.1, 0.9, 1.0, 1.7, 2.6], 1.0) == [0, 3, 5]  # variable frame rate: 0, 1.0, 2.6 s
    assert sample_indices(np.arange(5) / 10, 100.0) == [0, 1, 2, 3, 4]  # faster than the video: every frame once
    assert sample_indices([], 2.0) == []
    with pytest.raises(ValueError, match="fps"):
        sample_indices(t25, 0.0)


def test_load_videos_synthetic_unlabelled_records(tmp_path):
    from distill.data import LOADERS
    from distill.data.videos import load_videos

    _write_blank_video(tmp_path / "blank.avi")
    (tmp_path / "photo.jpg").write_bytes(b"not a video")  # non-video files are ignored
    (tmp_path / "notes.txt").write_text("x")
    assert LOADERS["videos"] is load_videos
    recs = list(load_videos(tmp_path))
    idx = [0, 5, 10, 15, 20, 25]  # 2 per second of a 10 fps video
    assert [r.key for r in recs] == [f"blank@{i}" for i in idx]
    assert {r.subject for r in recs} == {"blank"} and {r.split for r in recs} == {"train"}
    assert all(r.expression_votes is None and not r.au_occurrence and not r.au_intensity for r in recs)
    for r, i in [*zip(recs, idx), (recs[1], 5), (recs[-1], 25), (recs[0], 0)]:  # forward, then backward reads
        rgb = r.load()
        assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
        assert abs(float(rgb.mean()) - (40 + 6 * i)) < 3, (r.key, rgb.mean())
    assert [r.key for r in load_videos(tmp_path / "blank.avi", fps=1.0)] == ["blank@0", "blank@10", "blank@20"]
    _write_blank_video(tmp_path / "blank.mp4", n=3)
    with pytest.raises(ValueError, match="share the stem"):
        list(load_videos(tmp_path))


def test_prepare_drops_face_free_frames(tmp_path):
    """No face -> no rows: the frames are counted as missed and no split file is written."""
    from distill.data.prepare import prepare
    from distill.data.videos import load_videos

    _write_blank_video(tmp_path / "blank.avi", n=10)
    report = prepare(load_videos(tmp_path / "blank.avi"), tmp_path / "out", on_miss="drop", jobs=1)
    assert report["splits"] == {"train": {"images": 2, "detected": 0, "missed": 2, "kept": 0}}
    assert not (tmp_path / "out" / "train.npz").exists()
    assert (tmp_path / "out" / "prepare_report.json").exists()


def test_cli_refuses_mean_face_for_videos(tmp_path):
    from distill.cli import build_parser

    args = build_parser().parse_args(["prepare", "--dataset", "videos", str(tmp_path), "--on-miss", "mean-face"])
    with pytest.raises(SystemExit, match="drop"):
        args.func(args)
    args = build_parser().parse_args(["prepare", "--dataset", "videos", str(tmp_path), "--fps", "4"])
    assert args.on_miss is None and args.fps == 4.0


@pytest.mark.data
def test_prepare_real_video_frames(shared_videos, tmp_path):
    from distill.data.prepare import PreparedSplit, prepare
    from distill.data.videos import load_videos

    report = prepare(load_videos(shared_videos / "single_face.mp4"), tmp_path, on_miss="drop", jobs=1, limit=3)
    assert report["splits"]["train"]["images"] == 3
    p = PreparedSplit.load(tmp_path / "train.npz")
    assert p.crops.shape == (3, 64, 64, 3) and p.crops.dtype == np.uint8
    assert p.detected.all() and not np.isnan(p.blendshapes).any()
    frames = [int(k.split("@")[1]) for k in p.keys]
    assert [k.split("@")[0] for k in p.keys] == ["single_face"] * 3
    assert len(set(p.keys)) == 3 and frames == sorted(frames) and frames == [0, 15, 30]  # 30 fps video, 2 per second
    assert set(p.subjects) == {"single_face"}
    assert not p.votes.any() and (p.au_occurrence == -1).all() and np.isnan(p.au_intensity).all()


def _split(n, subjects, seed, labelled=True):
    from distill.data.prepare import CK_AUS, PreparedSplit

    rng = np.random.default_rng(seed)
    votes = rng.multinomial(10, [1 / 8] * 8, size=n).astype(np.float32) if labelled else np.zeros((n, 8), np.float32)
    return PreparedSplit(keys=np.array([f"k{seed}_{i}" for i in range(n)]),
                         crops=rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8), detected=np.ones(n, bool),
                         blendshapes=rng.random((n, 52)).astype(np.float32) * 0.5,
                         pose_deg=np.zeros((n, 3), np.float32), votes=votes,
                         au_occurrence=np.where(labelled and subjects[0] != "",
                                                (rng.random((n, len(CK_AUS))) < 0.4).astype(np.int8), np.int8(-1)),
                         au_intensity=np.full((n, 12), np.nan, np.float32), subjects=np.array(subjects))


def test_build_tables_keeps_videos_out_of_train(tmp_path):
    from distill.dataset import build_tables

    _split(40, [""] * 40, 0).save(tmp_path / "ferplus" / "train.npz")
    _split(12, [""] * 12, 1).save(tmp_path / "ferplus" / "valid.npz")
    ck = [f"S{s:03d}" for s in range(1, 11) for _ in range(3)]
    _split(len(ck), ck, 2).save(tmp_path / "ckplus" / "train.npz")
    before, _ = build_tables(tmp_path)
    assert "videos" not in before
    stems = ["a"] * 5 + ["b"] * 4
    _split(len(stems), stems, 3, labelled=False).save(tmp_path / "videos" / "train.npz")
    tables, _ = build_tables(tmp_path)
    v = tables["videos"]
    assert len(v) == 9 and set(v.source) == {"videos"} and list(v.subject) == stems and not v.expr_mask.any()
    assert v.images.shape == (9, 16, 16) and v.images.dtype == np.uint8
    assert "videos" not in set(tables["train"].source) and len(tables["train"]) == len(before["train"])
    assert np.array_equal(tables["train"].images, before["train"].images)


def test_extra_train_may_name_videos_for_mae_only():
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from distill.train import TrainConfig

    assert TrainConfig(name="x", stage="mae", arch="mae_vit", extra_train=["valid", "videos"]).extra_train == [
        "valid", "videos"]
    with pytest.raises(ValueError, match="videos"):
        TrainConfig(name="x", stage="teacher", arch="swin", extra_train=["videos"])
    with pytest.raises(ValueError, match="extra_train"):
        TrainConfig(name="x", stage="mae", arch="mae_vit", extra_train=["ck_test"])
