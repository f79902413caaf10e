"""Engine ``mediapipe``: full-range face detection + FaceMesh landmarks (468 points, 478 with irises).

Both models ship inside the mediapipe==0.10.21 wheel, so nothing has to be downloaded.
"""

import mediapipe

from steps.tracking.engines.mediapipe_common import MediaPipeCropEngine


class MediaPipeLegacy(MediaPipeCropEngine):
    name = "mediapipe"

    @classmethod
    def check_models(cls, settings):
        points = 478 if settings.mediapipe["refine_landmarks"] else 468
        return {"name": "mediapipe-face-detection-full-range+face-landmark", "version": mediapipe.__version__,
                "landmarks": points}


ENGINE = MediaPipeLegacy
