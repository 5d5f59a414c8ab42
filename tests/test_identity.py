"""Who is who: the tracklet clustering, the resolver on synthetic recordings, the dlib embedder on public-domain faces,
and (with ../shared/data) recordings with cuts through the whole chain."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="identity clustering needs scikit-learn (the identity extra)")

from libreface.identity import (DEFAULT_EPS, DLIB5_FROM_MEDIAPIPE, DLIB5_TEMPLATE_UNIT, IdentityOptions,  # noqa: E402
                                IdentityResolver, cluster_tracklets, select_subject, summarize)

# MOT-style scoring is benchmark code, not runtime: it lives in bench/mot.py, next to bench/identity.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from mot import score_identities  # noqa: E402

D = 128


def _unit(v):
    return v / np.linalg.norm(v)


def _centres(n: int, seed: int = 0) -> np.ndarray:
    return np.stack([_unit(v) for v in np.random.default_rng(seed).normal(size=(n, D))])


def _near(centre: np.ndarray, dist: float, rng) -> np.ndarray:
    """A unit vector about `dist` away from `centre`."""
    return _unit(centre + rng.normal(size=D) * dist / np.sqrt(D))


# -- cluster_tracklets: pure logic on synthetic embeddings -------------------------------------------


def test_tracklets_of_two_people_across_cuts_become_two_persons():
    rng = np.random.default_rng(1)
    a, b = _centres(2)
    who = ["a", "b", "a", "b", "a"]  # five shots, alternating, never together
    vectors = [np.stack([_near(a if w == "a" else b, 0.15, rng) for _ in range(4)]) for w in who]
    frames = [range(100 * i, 100 * i + 50) for i in range(5)]
    labels = cluster_tracklets(vectors, frames)
    assert labels[0] == labels[2] == labels[4] != labels[1] == labels[3]
    assert (labels >= 0).all()


def test_a_lone_face_unlike_everyone_is_flagged_and_a_lone_face_like_someone_joins_them():
    rng = np.random.default_rng(2)
    a, b, stranger = _centres(3)
    vectors = [np.stack([_near(a, 0.15, rng) for _ in range(5)]),
               np.stack([_near(b, 0.15, rng) for _ in range(5)]),
               _near(stranger, 0.15, rng)[None],  # one face, nobody's
               _near(a, 0.15, rng)[None]]  # one face, like a
    labels = cluster_tracklets(vectors, [range(0, 10), range(20, 30), [40], [50]])
    assert labels[2] == -1
    assert labels[3] == labels[0] >= 0


def test_a_lone_face_halfway_between_two_people_is_flagged_not_merged():
    u, v = _centres(2)
    v = _unit(v - (v @ u) * u)  # orthogonal to u
    a, b = _unit(u + 0.3145 * v), _unit(u - 0.3145 * v)  # two people 0.6 apart; u is 0.30 from each
    assert np.linalg.norm(a - b) > DEFAULT_EPS > np.linalg.norm(u - a)
    vectors = [np.stack([a] * 3), np.stack([b] * 3), u[None]]
    labels = cluster_tracklets(vectors, [range(0, 10), range(20, 30), [40]])
    assert labels[0] != labels[1] and labels[2] == -1


def test_a_track_whose_faces_disagree_never_links_two_people():
    rng = np.random.default_rng(3)
    a, b = _centres(2)
    mixed = np.stack([_near(a, 0.1, rng), _near(b, 0.1, rng)])  # e.g. the tracker swapped two people
    vectors = [np.stack([_near(a, 0.1, rng) for _ in range(4)]), np.stack([_near(b, 0.1, rng) for _ in range(4)]),
               mixed]
    labels = cluster_tracklets(vectors, [range(0, 10), range(20, 30), range(40, 50)])
    assert labels[0] != labels[1]


def test_look_alikes_seen_in_the_same_frames_stay_two_people():
    rng = np.random.default_rng(4)
    a = _centres(1)[0]
    b = _unit(a + rng.normal(size=D) * 0.3 / np.sqrt(D))  # closer than eps: DBSCAN alone would merge them
    assert np.linalg.norm(a - b) < DEFAULT_EPS
    vectors = [np.stack([_near(a, 0.03, rng) for _ in range(4)]), np.stack([_near(b, 0.03, rng) for _ in range(4)])]
    labels = cluster_tracklets(vectors, [range(0, 50), range(10, 60)])
    assert labels[0] != labels[1] and (labels >= 0).all()


# -- IdentityResolver on a synthetic recording -----------------------------------------------------


class _CodeEmbedder:
    """A fake embedder: the person is written in landmark 0's z, a per-face noise seed in landmark 1's z."""

    name, dim = "fake", D

    def __init__(self, centres: np.ndarray, noise: float = 0.12):
        self.centres, self.noise, self.calls = centres, noise, 0

    def embed(self, rgb, landmarks_px):
        self.calls += 1
        person, seed = int(landmarks_px[0, 2]), int(landmarks_px[1, 2])
        return _near(self.centres[person], self.noise, np.random.default_rng(seed)).astype(np.float32)


_SEED = iter(range(10**9))


def _face(person: int, box, confidence: float = 0.9):
    x0, y0, x1, y1 = box
    gx, gy = np.meshgrid(np.linspace(x0, x1, 22), np.linspace(y0, y1, 22))  # 484 points over the box
    lm = np.zeros((478, 3), np.float32)
    lm[:, 0], lm[:, 1] = gx.ravel()[:478], gy.ravel()[:478]
    lm[33, :2] = (x0 + 0.3 * (x1 - x0), y0 + 0.4 * (y1 - y0))  # eye corners and nose tip, for face_quality
    lm[263, :2] = (x0 + 0.7 * (x1 - x0), y0 + 0.4 * (y1 - y0))
    lm[1, :2] = ((x0 + x1) / 2, y0 + 0.6 * (y1 - y0))
    lm[0, 2], lm[1, 2] = person, next(_SEED)
    return SimpleNamespace(box_px=tuple(map(float, box)), landmarks_px=lm, confidence=confidence)


def _frame(shot: int, rng) -> np.ndarray:
    rgb = np.full((360, 640, 3), (30, 120, 220)[shot % 3], np.uint8)
    return np.clip(rgb + rng.integers(0, 12, rgb.shape), 0, 255).astype(np.uint8)


LEFT, RIGHT, CENTRE = (120, 100, 240, 250), (400, 100, 520, 250), (260, 80, 400, 260)
A, B, STRANGER = 0, 1, 2


def _synthetic_recording():
    """(frame, shot, faces, face_ids, truth) tuples.

    shot 0, frames 0-39:    A left (id 0) and B right (id 1), a two-shot
    shot 1, frames 40-79:   B alone, centred (id 2)
    shot 2, frames 80-119:  A alone, centred; the tracker carried id 2 over the cut
            frames 120-129: nobody (A left the room)
            frames 130-169: A is back (id 3); at frame 150 a false detection (id 4) that is nobody
    """
    out = []
    for f in range(170):
        shot = 0 if f < 40 else 1 if f < 80 else 2
        if f < 40:
            faces, ids, truth = [_face(A, LEFT), _face(B, RIGHT)], [0, 1], ["A", "B"]
        elif f < 80:
            faces, ids, truth = [_face(B, CENTRE)], [2], ["B"]
        elif f < 120:
            faces, ids, truth = [_face(A, CENTRE)], [2], ["A"]
        elif f < 130:
            faces, ids, truth = [], [], []
        else:
            faces, ids, truth = [_face(A, CENTRE)], [3], ["A"]
            if f == 150:
                faces, ids, truth = faces + [_face(STRANGER, (20, 20, 80, 90), 0.5)], ids + [4], truth + [None]
        out.append((f, shot, faces, ids, truth))
    return out


def _run(recording, embedder, options=None):
    rng = np.random.default_rng(0)
    resolver = IdentityResolver(embedder, options or IdentityOptions())
    for f, shot, faces, ids, _ in recording:
        resolver.observe(f, _frame(shot, rng), faces, ids, f / 25)
    return resolver, resolver.resolve()


def test_a_recording_with_cuts_and_a_return_gets_one_person_id_per_person():
    recording = _synthetic_recording()
    _, result = _run(recording, _CodeEmbedder(_centres(3)))
    rows = [(f, fid, t) for f, _, _, ids, truth in recording for fid, t in zip(ids, truth) if t is not None]
    pred = result.person_ids([r[0] for r in rows], [r[1] for r in rows])
    score = score_identities([r[0] for r in rows], [r[2] for r in rows], pred)
    assert (score.id_switches, score.fragmentations, score.extra_persons, score.flagged_rows) == (0, 0, 0, 0)
    assert score.id_accuracy == 1.0
    assert result.shot_starts == (0, 40, 80)
    assert [p.n_frames for p in result.persons] == [120, 80]  # A, on screen longest, is person 0
    assert result.person_of(10, 0) == result.person_of(100, 2) == result.person_of(160, 3) == 0
    assert result.person_of(10, 1) == result.person_of(60, 2) == 1
    assert result.persons[0].screen_time_s == pytest.approx(120 / 25)
    assert result.persons[0].face_ids == (0, 2, 3)


def test_a_face_that_fits_no_one_is_flagged_not_merged():
    _, result = _run(_synthetic_recording(), _CodeEmbedder(_centres(3)))
    assert result.person_of(150, 4) == -1
    assert result.flagged == frozenset({4}) and result.track_to_person[4] == -1
    (flagged,) = [t for t in result.tracklets if t.person_id < 0]
    assert (flagged.face_id, flagged.n_frames, flagged.flag) == (4, 1, "noise")
    assert result.to_dict()["flagged_face_ids"] == [4]


def test_a_track_carried_over_a_cut_is_split_there():
    _, result = _run(_synthetic_recording(), _CodeEmbedder(_centres(3)))
    assert {(t.face_id, t.shot): t.person_id for t in result.tracklets if t.face_id == 2} == {(2, 1): 1, (2, 2): 0}
    assert result.track_to_person[2] == 0  # the longer part; person_of() labels each part exactly


def test_embedding_cost_is_bounded_per_frame_and_per_track():
    centres = _centres(30, seed=5)
    embedder = _CodeEmbedder(centres)
    options = IdentityOptions(max_embeds_per_frame=1, max_per_track=3, sample_every=5, max_faces_per_frame=10)
    resolver = IdentityResolver(embedder, options)
    rng = np.random.default_rng(0)
    per_frame = []
    for f in range(60):
        faces = [_face(p, (20 * p, 10, 20 * p + 18 + p, 40 + p)) for p in range(30)]  # face p is (18 + p) px wide
        before = embedder.calls
        resolver.observe(f, _frame(0, rng), faces, list(range(30)), f / 30)
        per_frame.append(embedder.calls - before)
    assert max(per_frame) <= 1
    result = resolver.resolve()
    embedded = {t.face_id: t.n_embedded for t in result.tracklets}
    assert set(k for k, n in embedded.items() if n) == set(range(20, 30))  # only the 10 largest faces
    assert max(embedded.values()) == 3 and embedder.calls == 30


def test_thumbnails_are_arrays_of_the_requested_size():
    _, result = _run(_synthetic_recording(), _CodeEmbedder(_centres(3)))
    thumb = result.thumbnail(0, size=(64, 80))
    assert thumb.shape == (80, 64, 3) and thumb.dtype == np.uint8
    with pytest.raises(ValueError, match="unknown person_id 7; persons: 0, 1"):
        result.thumbnail(7)


def test_an_empty_recording_has_no_person():
    resolver = IdentityResolver(_CodeEmbedder(_centres(1)))
    resolver.observe(0, np.zeros((10, 10, 3), np.uint8), [], [], 0.0)
    result = resolver.resolve()
    assert result.persons == [] and result.main_person == -1 and result.person_of(0, 0) == -1


@pytest.mark.parametrize("options, message", [
    (IdentityOptions(eps=0.0), "eps must be in \\(0, 2\\)"),
    (IdentityOptions(max_per_track=0), "max_per_track must be >= 1, got 0"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        IdentityResolver(_CodeEmbedder(_centres(1)), options)


# -- rows: summary, subject, MOT-style figures ------------------------------------------------------


def _rows_df():
    import pandas as pd

    rows = [  # frame, face_id, person_id, timestamp, success, neutral, happiness
        (0, 0, 0, 0.0, 1, 0.8, 0.2), (0, 1, 1, 0.0, 1, 0.1, 0.9),
        (1, 0, 0, 0.5, 1, 0.6, 0.4),
        (2, -1, None, 1.0, 0, None, None),
        (3, 2, -1, 1.5, 1, 0.5, 0.5),
        (4, 0, 0, 2.0, 1, 0.7, 0.3),
    ]
    df = pd.DataFrame(rows, columns=["frame", "face_id", "person_id", "timestamp", "success", "neutral", "happiness"])
    df["person_id"] = df["person_id"].astype("Int64")
    df.attrs["libreface"] = {"expressions": ["neutral", "happiness"]}
    return df


def test_the_summary_counts_frames_screen_time_and_mean_expression_per_person():
    s = summarize(_rows_df())
    assert (s["frames"], s["frames_with_faces"], s["duration_s"], s["main_person"]) == (5, 4, 2.5, 0)
    p0, p1 = s["persons"]
    assert (p0["person_id"], p0["main"], p0["frames"], p0["screen_time_s"]) == (0, True, 3, 1.5)
    assert p0["mean_expression"] == {"neutral": 0.7, "happiness": 0.3} and p0["dominant_expression"] == "neutral"
    assert (p1["frames"], p1["screen_time_s"], p1["dominant_expression"]) == (1, 0.5, "happiness")
    assert s["unassigned"] == {"frames": 1, "rows": 1}


def test_select_subject_keeps_one_person():
    df = _rows_df()
    assert select_subject(df, "main")["frame"].tolist() == [0, 1, 4]
    assert select_subject(df, 1)["frame"].tolist() == [0]
    assert select_subject(df, "1")["frame"].tolist() == [0]
    assert select_subject(df, "all") is df


@pytest.mark.parametrize("subject, message", [
    (5, "person_id 5 is not in this recording; persons: 0, 1"),
    ("boss", "subject must be 'main', 'all' or a person_id"),
])
def test_an_unknown_subject_is_refused_with_the_choices(subject, message):
    with pytest.raises(ValueError, match=message):
        select_subject(_rows_df(), subject)


def test_id_switches_and_fragmentations_are_counted_mot_style():
    score = score_identities(range(8), list("aaaaabbb"), [0, 0, 1, 0, -1, 1, 1, 1])
    # a: 0 0 1 0 (-1): two switches, its run of 0 is interrupted once; b: no change
    assert (score.id_switches, score.fragmentations, score.extra_persons, score.flagged_rows) == (2, 1, 1, 1)
    assert score.id_accuracy == pytest.approx(6 / 8)


# -- the dlib embedder on public-domain faces ---------------------------------------------------------


def test_the_chip_points_are_the_ibug_points_libreface_already_maps():
    from libreface.outputs import IBUG68_FROM_MEDIAPIPE

    assert DLIB5_FROM_MEDIAPIPE == tuple(IBUG68_FROM_MEDIAPIPE[i] for i in (45, 42, 36, 39, 33))


def test_the_chip_template_is_dlibs(dlib_embedder):
    import dlib

    pts = DLIB5_TEMPLATE_UNIT * 2000 + 1000
    det = dlib.full_object_detection(dlib.rectangle(0, 0, 4000, 4000), [dlib.point(*map(round, p)) for p in pts])
    chip = dlib.get_face_chip_details(det, 150, 0.0)
    assert (chip.rect.left(), chip.rect.top()) == pytest.approx((1000, 1000), abs=1)
    assert chip.angle == pytest.approx(0, abs=1e-3)


def _landmarks(rgb, front_end):
    faces = front_end.detect(rgb)
    assert len(faces) >= 1
    return max(faces, key=lambda f: f.size_px).landmarks_px


def test_our_chip_gives_the_same_descriptor_as_dlibs_own_alignment(dlib_embedder, pd_faces, image_front_end):
    import dlib

    rgb = pd_faces.astronaut
    lm = _landmarks(rgb, image_front_end)
    pts = dlib_embedder.five_points(rgb, lm)
    det = dlib.full_object_detection(dlib.rectangle(0, 0, rgb.shape[1], rgb.shape[0]),
                                     [dlib.point(*map(round, p)) for p in pts])
    theirs = np.asarray(dlib_embedder._net.compute_face_descriptor(rgb, det))
    ours = dlib_embedder.embed(rgb, lm)
    assert np.linalg.norm(ours - theirs / np.linalg.norm(theirs)) < 0.05


def test_the_same_face_mirrored_shifted_or_scaled_is_closer_than_another_face(dlib_embedder, pd_faces,
                                                                            image_front_end):
    import cv2

    ast = pd_faces.astronaut
    variants = [np.ascontiguousarray(ast[:, ::-1]), np.ascontiguousarray(ast[30:, 40:]),
                cv2.resize(ast, (300, 300), interpolation=cv2.INTER_AREA)]
    ref = dlib_embedder.embed(ast, _landmarks(ast, image_front_end))
    same = [np.linalg.norm(ref - dlib_embedder.embed(v, _landmarks(v, image_front_end))) for v in variants]
    from skimage import data

    others = [np.stack([data.camera()] * 3, axis=-1)]  # the cameraman
    if pd_faces.hopper is not None:
        others.append(pd_faces.hopper)  # another woman
    diff = [np.linalg.norm(ref - dlib_embedder.embed(o, _landmarks(o, image_front_end))) for o in others]
    assert np.linalg.norm(ref) == pytest.approx(1.0, abs=1e-5)
    assert max(same) < DEFAULT_EPS < min(diff), (same, diff)


# -- recordings made from the shared videos (full chain) ---------------------------------------------


def _chain(clips, max_faces, embedder, fps=25.0, letterbox=True):
    """Run FaceFrontEnd (VIDEO) -> IouTracker -> IdentityResolver over (path, first, last, step, truth_fn) clips,
    letterboxed into one 640 x 360 recording (or as they are). Returns (result, rows [(frame, face_id, truth)])."""
    from libreface.landmarks import FaceFrontEnd, FrontEndOptions
    from libreface.sources import open_source
    from libreface.track import IouTracker

    resolver, tracker, rows, i = IdentityResolver(embedder), IouTracker(), [], 0
    with FaceFrontEnd(FrontEndOptions(max_faces=max_faces)) as fe:
        for path, first, last, step, truth in clips:
            with open_source(path) as src:
                for frame in src:
                    if frame.index >= last:
                        break
                    if frame.index < first or (frame.index - first) % step:
                        continue
                    canvas = rgb = frame.rgb
                    if letterbox:
                        canvas = _letterbox(rgb)
                    faces = fe.detect(canvas, int(i * 1000 / fps))
                    ids = tracker.update([f.box_px for f in faces])
                    resolver.observe(i, canvas, faces, ids, i / fps)
                    rows += [(i, fid, truth(f)) for f, fid in zip(faces, ids)]
                    i += 1
    return resolver.resolve(), [r for r in rows if r[2] is not None]


def _letterbox(rgb, w=640, h=360):
    import cv2

    s = min(w / rgb.shape[1], h / rgb.shape[0])
    small = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((h, w, 3), np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


@pytest.mark.data
def test_two_people_with_cuts_and_a_return_keep_their_person_ids(shared_videos, dlib_embedder):
    man, jet = (lambda f: "man"), (lambda f: "jet_li")
    clips = [(shared_videos / "single_face.mp4", 0, 72, 3, man),
             (shared_videos / "1034_03_006_jet_li.avi", 0, 100, 3, jet),
             (shared_videos / "face_noface.mov", 0, 72, 3, man)]  # the same man, another recording
    result, rows = _chain(clips, 1, dlib_embedder)
    frames, face_ids, truth = zip(*rows)
    pred = result.person_ids(frames, face_ids)
    score = score_identities(frames, truth, pred)
    assert score.id_switches <= 2  # at most one per cut; measured: 0
    assert (score.id_switches, score.extra_persons, score.flagged_rows) == (0, 0, 0)
    assert len(result.persons) == 2 and len(result.shot_starts) == 3
    assert {t for t, p in zip(truth, pred) if p == 0} == {"man"}  # the man is on screen longest: the main subject

    import pandas as pd

    df = pd.DataFrame({"frame": frames, "face_id": face_ids, "person_id": pred, "timestamp": np.array(frames) / 25,
                       "success": 1})
    assert set(np.array(truth)[select_subject(df, "main").index]) == {"man"}
    assert [p["frames"] for p in summarize(df)["persons"]] == [p.n_frames for p in result.persons]


@pytest.mark.data
def test_three_men_moving_around_each_other_keep_three_person_ids(shared_videos, dlib_embedder):
    def who(face):  # the nearest man has the largest face; the mug man stays left, the third man right
        x0, _, x1, _ = face.box_px
        cx, w = (x0 + x1) / 2, x1 - x0
        if w >= 90:
            return "near"
        return "left" if cx < 260 else "right" if cx > 300 else None  # in between: not scored

    result, rows = _chain([(shared_videos / "multi_face.avi", 0, 702, 6, who)], 4, dlib_embedder, fps=30.0,
                          letterbox=False)
    frames, face_ids, truth = zip(*rows)
    score = score_identities(frames, truth, result.person_ids(frames, face_ids))
    assert len(result.persons) == 3
    assert score.id_switches == 0 and score.extra_persons == 0
    assert score.id_accuracy > 0.97
