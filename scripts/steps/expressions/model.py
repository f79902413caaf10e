"""py-feat 2.1.5's landmark, AU and emotion models, loaded offline from a HuggingFace cache folder.

Only the expressions env imports this module. Call :func:`steps.expressions.pipeline.offline_hub` first:
huggingface_hub reads ``HF_HUB_OFFLINE`` at import (scripts/run_step.py sets the job's thread counts).
The loading and the per-face computation follow py-feat's
``Detectorv1.__init__`` and ``Detectorv1.forward`` (same hub files, classes and calls) for the
models named in :data:`steps.expressions.pipeline.MODEL_FILES`, with the face boxes given instead of detected.
"""

import contextlib
import importlib.metadata
import json
import logging

import feat.detector  # noqa: F401 - imports xgboost before torch and registers py-feat's skops/xgboost fixes
import numpy as np
import torch
from feat.au_detectors.StatLearning.SL_test import XGBClassifier
from feat.emo_detectors.ResMaskNet.resmasknet_test import ResMasking
from feat.landmark_detectors.mobilefacenet_test import MobileFaceNet
from feat.pretrained import AU_LANDMARK_MAP
from feat.utils import FEAT_EMOTION_COLUMNS, N_OPENFACE_LANDMARKS_2D_FLAT, hf_hub_download_with_fallback
from feat.utils.face_mask import extract_hog_features_batched
from feat.utils.image_operations import HOGLayer, extract_face_from_bbox_torch
from huggingface_hub import hf_hub_download
from skops.io import get_untrusted_types, load
from torch import nn

from vidflow.devices import choose_device, cuda_status
from vidflow.errors import UserError

log = logging.getLogger("expressions")

FACE_SIZE = 112  # mobilefacenet's crop (Detectorv1.face_size)
EMOTION_SIZE, EMOTION_EXPAND = 224, 1.1  # ResMaskNet's wider crop (Detectorv1.detect_faces)


class ExpressionModel:
    """The models of ``models`` (``{"landmark_model", "au_model", "emotion_model"}``) from the cache ``model_dir``."""

    def __init__(self, model_dir, models, threads=1, gpus=0):
        if dict(models) != {"landmark_model": "mobilefacenet", "au_model": "xgb", "emotion_model": "resmasknet"}:
            raise UserError("expressions", f"unsupported py-feat models {models}")
        torch.set_num_threads(max(1, threads))
        with contextlib.suppress(RuntimeError):  # only settable before any parallel work
            torch.set_num_interop_threads(1)
        self.version = importlib.metadata.version("py-feat")
        self.device, why = choose_device(gpus, "expressions.gpu", lambda: cuda_status(torch))
        log.info("device %s: %s", self.device, why)
        self.au_names = list(AU_LANDMARK_MAP["Feat"])
        self.emotion_names = list(FEAT_EMOTION_COLUMNS)
        cache = str(model_dir)
        try:
            self.landmarks = self._landmark_model(cache)
            self.aus = self._au_model(cache)
            self.emotions = self._emotion_model(cache)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:  # e.g. a truncated or foreign file
            raise UserError("expressions.model_dir", f"{model_dir}: cannot load the py-feat models "
                                                     f"({type(err).__name__}: {err})") from None
        self.hog_layer = HOGLayer(orientations=8, pixels_per_cell=8, cells_per_block=2,
                                  block_normalization="L2-Hys", feature_vector=True, device=self.device).to(self.device)

    def _landmark_model(self, cache):
        model = MobileFaceNet([FACE_SIZE, FACE_SIZE], N_OPENFACE_LANDMARKS_2D_FLAT, device=self.device)
        path = hf_hub_download(repo_id="py-feat/mobilefacenet", filename="mobilefacenet_model_best.pth.tar",
                               cache_dir=cache)
        model.load_state_dict(torch.load(path, map_location=self.device, weights_only=True)["state_dict"])
        return model.eval().to(self.device)

    def _au_model(self, cache):
        path = hf_hub_download_with_fallback(repo_id="py-feat/xgb_au", filename="xgb_au_classifier_v2.skops",
                                             fallback_filename="xgb_au_classifier.skops", cache_dir=cache)
        loaded = load(path, trusted=get_untrusted_types(file=path))
        model = XGBClassifier()
        model.load_weights(scaler_upper=loaded.scaler_upper, pca_model_upper=loaded.pca_model_upper,
                           scaler_lower=loaded.scaler_lower, pca_model_lower=loaded.pca_model_lower,
                           scaler_full=loaded.scaler_full, pca_model_full=loaded.pca_model_full,
                           classifiers=loaded.classifiers)
        return model

    def _emotion_model(self, cache):
        with open(hf_hub_download(repo_id="py-feat/resmasknet", filename="config.json", cache_dir=cache)) as handle:
            config = json.load(handle)
        model = ResMasking("", in_channels=config["in_channels"])
        model.fc = nn.Sequential(nn.Dropout(0.4), nn.Linear(512, config["num_classes"]))
        path = hf_hub_download(repo_id="py-feat/resmasknet", filename="ResMaskNet_Z_resmasking_dropout1_rot30.pth",
                               cache_dir=cache)
        model.load_state_dict(torch.load(path, map_location=self.device, weights_only=True)["net"])
        return model.eval().to(self.device)

    @torch.inference_mode()
    def predict(self, images, boxes, owners):
        """AU values ``[N, 20]`` and emotion probabilities ``[N, 7]`` of the faces ``boxes`` (``[x1, y1, x2, y2]``).

        ``images`` is ``[B, H, W, 3]`` uint8 RGB; ``owners[i]`` is the image of box ``i``.
        """
        frames = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255.0)
        frames = frames.to(self.device)
        boxes = torch.from_numpy(boxes).to(self.device)
        owners = torch.from_numpy(owners).to(self.device)
        faces, _ = extract_face_from_bbox_torch(frames, boxes, face_size=FACE_SIZE, frame_idx=owners)
        landmarks = self.landmarks.forward(faces)[0]
        hog, aligned_landmarks = extract_hog_features_batched(faces, landmarks, hog_layer=self.hog_layer)
        aus = self.aus.detect_au(frame=hog, landmarks=[aligned_landmarks])
        wide, _ = extract_face_from_bbox_torch(frames, boxes, expand_bbox=EMOTION_EXPAND, face_size=EMOTION_SIZE,
                                               frame_idx=owners)
        emotions = torch.softmax(self.emotions.forward(wide), 1)
        return np.asarray(aus, dtype=np.float64), emotions.cpu().numpy().astype(np.float64)
