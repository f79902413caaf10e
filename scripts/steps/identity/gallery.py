"""Named references (``identity.gallery``): a folder ``<Name>/`` per person with a few photos and/or voice clips.

Photos: the largest face dlib's HOG detector finds (upsampled once) is aligned and described like a track's frame;
voice clips (any audio FFmpeg reads, at least a second) are embedded by CAM++ like a speaker. A person's reference
is the mean of its photos' and of its clips' embeddings.
"""

import logging
from pathlib import Path

import numpy as np

from vidflow.errors import UserError

log = logging.getLogger("identity")

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CLIP_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac"}


def photo_embedding(path, embedder, detector):
    """The descriptor of the largest face of a photo, or None (logged) when no face is found."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise UserError(path, f"cannot read the photo ({err})") from None
    found = detector(rgb, 1)
    if not found:
        log.warning("%s: no face found; not used", path)
        return None
    face = max(found, key=lambda r: (r.width() * r.height(), -r.left()))
    return embedder.measure(rgb, [face.left(), face.top(), face.width(), face.height()]).descriptor


def clip_embedding(path, embedder):
    from steps.identity.voices import load_audio

    vector, seconds = embedder.embed(load_audio(path))
    if vector is None:
        log.warning("%s: %.1f s of voiced speech is too little; not used", path, seconds)
    return vector


def load_gallery(folder, threads: int = 1) -> dict:
    """``name -> {"face": mean descriptor or None, "voice": mean embedding or None, "photos", "clips"}``."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"identity.gallery ({folder})", "not a folder")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise UserError(f"identity.gallery ({folder})", "holds no <Name>/ folder")
    face_embedder = detector = voice_embedder = None
    gallery = {}
    for person in people:
        files = sorted(p for p in person.iterdir() if p.is_file())
        photos = [p for p in files if p.suffix.lower() in PHOTO_SUFFIXES]
        clips = [p for p in files if p.suffix.lower() in CLIP_SUFFIXES]
        faces, voices = [], []
        if photos and face_embedder is None:
            import dlib

            from steps.identity.faces import FaceEmbedder

            face_embedder, detector = FaceEmbedder(), dlib.get_frontal_face_detector()
        if clips and voice_embedder is None:
            from steps.identity.voices import VoiceEmbedder

            voice_embedder = VoiceEmbedder(threads)
        faces = [v for v in (photo_embedding(p, face_embedder, detector) for p in photos) if v is not None]
        voices = [v for v in (clip_embedding(p, voice_embedder) for p in clips) if v is not None]
        if not faces and not voices:
            log.warning("%s: no usable photo or voice clip; this name is not used", person)
            continue
        gallery[person.name] = {"face": np.mean(faces, axis=0) if faces else None,
                                "voice": np.mean(voices, axis=0) if voices else None,
                                "photos": len(faces), "clips": len(voices)}
        log.info("gallery %s: %d photo(s), %d clip(s)", person.name, len(faces), len(voices))
    return gallery
