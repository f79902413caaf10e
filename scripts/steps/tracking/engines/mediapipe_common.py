"""Shared by the MediaPipe engines: full-range face detection, then FaceMesh landmarks per face.

MediaPipe's own FaceMesh/FaceLandmarker detector is short-range (faces larger than ~20% of the
image), so faces are found with the full-range detector (on square tiles of the frame), and the
FaceMesh landmark model (``FaceLandmarkCpu`` from the wheel) then runs on a region of interest
around each face: MediaPipe's own detection -> ROI -> landmarks pipeline, with the full-range
detector and several faces. The landmark model also confirms a face (it outputs nothing below its
face-presence threshold), which lets faces be followed between detections. Imports mediapipe:
only the tracking_mediapipe env imports this module.
"""

import numpy as np
from google.protobuf import text_format
from mediapipe.framework import calculator_pb2
from mediapipe.framework.formats import rect_pb2
from mediapipe.python.solution_base import SolutionBase
from mediapipe.python.solutions import face_detection

from steps.tracking.engines.crop import CropLandmarkEngine, non_max_suppression, points_box, square_tiles

ROI_SCALE = 1.5  # landmark ROI side / face box side, as in MediaPipe's face mesh graphs
LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""


# A serialized NormalizedLandmarkList: per landmark, field 1 (tag 0x0a) of 15 bytes holding x, y, z as floats
# (tags 0x0d, 0x15, 0x1d); landmarks with more fields (visibility, presence) are read by protobuf instead.
LANDMARK_RECORD = np.dtype([("tag", "u1"), ("size", "u1"), ("x_tag", "u1"), ("x", "<f4"), ("y_tag", "u1"),
                            ("y", "<f4"), ("z_tag", "u1"), ("z", "<f4")])
LANDMARK_TAGS = {"tag": 0x0A, "size": 15, "x_tag": 0x0D, "y_tag": 0x15, "z_tag": 0x1D}
TAG_OFFSETS = [LANDMARK_RECORD.fields[name][1] for name in LANDMARK_TAGS]  # their bytes in a record


def landmark_xyz(landmarks):
    """(N, 3) float64 array of a NormalizedLandmarkList's x, y, z, read from its serialized bytes (~30 us; ~200 us
    through the message's Python objects)."""
    data = landmarks.SerializeToString()
    if len(data) % LANDMARK_RECORD.itemsize == 0:
        tags = np.frombuffer(data, dtype=np.uint8).reshape(-1, LANDMARK_RECORD.itemsize)[:, TAG_OFFSETS]
        if np.array_equal(tags, np.broadcast_to(list(LANDMARK_TAGS.values()), tags.shape)):
            rows = np.frombuffer(data, dtype=LANDMARK_RECORD)
            return np.stack([rows["x"], rows["y"], rows["z"]], axis=1).astype(np.float64)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float64)


def run_graph(solution, inputs):
    """``solution.process(inputs)`` (a MediaPipe ``SolutionBase``) as ``{output stream: content or None}``.

    ``process`` builds a namedtuple class on every call (~0.3 ms, a tenth of the landmark model's time); this
    does the rest of what it does, through its members (mediapipe is pinned).
    """
    solution._graph_outputs.clear()
    solution._simulated_timestamp += 33333  # as process: a 30 fps timeline
    for name, data in inputs.items():
        packet = solution._make_packet(solution._input_stream_type_info[name], data)
        solution._graph.add_packet_to_input_stream(stream=name, packet=packet.at(solution._simulated_timestamp))
    solution._graph.wait_until_idle()
    outputs = solution._graph_outputs
    return {name: solution._get_packet_content(kind, outputs[name]) if name in outputs else None
            for name, kind in solution._output_stream_type_info.items()}


class FaceLandmarksOnRoi:
    """The FaceMesh landmark model (468 points, 478 with attention/irises) on a given face region."""

    def __init__(self, with_attention=True):
        config = text_format.Parse(LANDMARK_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self.graph = SolutionBase(graph_config=config, side_inputs={"with_attention": bool(with_attention)},
                                  outputs=["landmarks"])

    @staticmethod
    def region(width, height, box):
        """The landmark model's region of interest around ``box`` (pixels) in a ``width`` x ``height`` frame."""
        side = max(box[2], box[3]) * ROI_SCALE
        return rect_pb2.NormalizedRect(x_center=(box[0] + box[2] / 2) / width, y_center=(box[1] + box[3] / 2) / height,
                                       width=side / width, height=side / height, rotation=0.0)

    def __call__(self, frame, box):
        """Landmarks (N x 3, frame pixels, z scaled like x) for the face in ``box``, or None if no face there."""
        height, width = frame.shape[:2]
        result = run_graph(self.graph, {"image": frame, "roi": self.region(width, height, box)})["landmarks"]
        if result is None:
            return None
        return landmark_xyz(result) * np.array([width, height, width], dtype=np.float64)

    def close(self):
        self.graph.close()


class MediaPipeCropEngine(CropLandmarkEngine):
    """Full-range detection on the frame + FaceMesh landmarks on each face's region.

    Subclasses may override ``describe_one(frame, hint) -> face or None`` (see :meth:`describe_one`).
    The output ``bbox`` is the box of the landmarks (hairline to chin, cheek to cheek) when there
    are landmarks, else the detector's box.
    """

    def __init__(self, settings, device="cpu"):
        super().__init__(settings, device)
        self.detector = face_detection.FaceDetection(model_selection=1,
                                                     min_detection_confidence=settings.min_score)
        self.mesh = FaceLandmarksOnRoi(settings.mediapipe["refine_landmarks"])

    def detect(self, frame):
        height, width = frame.shape[:2]
        found = []
        for tx, ty, side in square_tiles(width, height):
            tile = frame if side is None else np.ascontiguousarray(frame[ty:ty + side, tx:tx + side])
            th, tw = tile.shape[:2]
            for detection in run_graph(self.detector, {"image": tile})["detections"] or []:
                rel = detection.location_data.relative_bounding_box
                x, y = tx + rel.xmin * tw, ty + rel.ymin * th
                x0, y0 = max(x, float(tx)), max(y, float(ty))
                x1, y1 = min(x + rel.width * tw, float(tx + tw)), min(y + rel.height * th, float(ty + th))
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    found.append({"bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(detection.score[0])})
        return non_max_suppression(found)[: self.settings.max_faces]

    def describe_one(self, frame, hint):
        """``{"bbox", "landmarks", ...}`` for the face at ``hint["bbox"]``, or None if no face is there."""
        height, width = frame.shape[:2]
        pts = self.mesh(frame, hint["bbox"])
        if pts is None:
            return None
        return {"bbox": points_box(pts, width, height), "landmarks": pts}

    def close(self):
        self.mesh.close()
        self.detector.close()
