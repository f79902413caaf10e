"""vidflow.jsonstream: members and array items read one at a time equal json.load; writing equals dumps_json."""

import json
import random

import pytest

from vidflow.io import dumps_json
from vidflow.jsonstream import Items, NotAnObject, compact, read_document, read_members, write_object


def read_all(path, key, chunk):
    header, items = read_document(path, key, chunk)
    items = list(items)
    return {**header, key: items} if key in header else header


def random_value(rnd, depth=0):
    roll = rnd.random()
    if depth > 2 or roll < 0.4:
        return rnd.choice([0, -7, 1.5, -2.5e-7, 1e300, 12345678901234567890, 0.1, "a\u00e9\"\\\n\u0000", "", True,
                           False, None])
    if roll < 0.7:
        return [random_value(rnd, depth + 1) for _ in range(rnd.randrange(5))]
    return {f"k{i}": random_value(rnd, depth + 1) for i in range(rnd.randrange(4))}


def random_documents(count=60):
    rnd = random.Random(11)
    for _ in range(count):
        doc = {f"a{i}": random_value(rnd) for i in range(rnd.randrange(3))}
        doc["frames"] = [random_value(rnd) for _ in range(rnd.randrange(6))]
        doc.update({f"z{i}": random_value(rnd) for i in range(rnd.randrange(3))})
        yield json.dumps(doc, indent=rnd.choice([None, 1]), sort_keys=rnd.random() < 0.5)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_streamed_read_equals_json_load(tmp_path, chunk):
    path = tmp_path / "doc.json"
    for text in random_documents():
        path.write_text(text, encoding="utf-8")
        assert read_all(path, "frames", chunk) == json.loads(text), (chunk, text)


def test_numbers_cut_by_the_read_block_are_read_whole(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text('{"frames":[1.5e-3,12345,-0.25,true,null],"x":1e5}', encoding="utf-8")
    for chunk in range(1, 12):
        assert read_all(path, "frames", chunk) == {"frames": [1.5e-3, 12345, -0.25, True, None], "x": 1e5}


def test_errors_are_json_loads_errors_with_the_same_position(tmp_path):
    path = tmp_path / "bad.json"
    rnd = random.Random(5)
    checked = 0
    for text in random_documents(40):
        for _ in range(6):
            cut = rnd.randrange(len(text) + 1)
            bad = text[:cut] + rnd.choice(["", "x", ",", "]", "}", '"', "1.", "\n"]) + text[cut + rnd.randrange(3):]
            try:
                want = json.loads(bad)
            except ValueError as err:
                want = str(err)
            if not isinstance(want, (dict, str)):
                continue
            path.write_text(bad, encoding="utf-8")
            for chunk in (1, 5, 1 << 20):
                try:
                    got = read_all(path, "frames", chunk)
                except ValueError as err:
                    got = str(err)
                if isinstance(want, dict) and not isinstance(want.get("frames", []), list):
                    continue  # not an array: not streamed, read whole (checked above for valid files)
                assert got == want, (bad, chunk)
                checked += 1
    assert checked > 500


def test_a_document_that_is_no_object_says_so(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(NotAnObject):
        list(read_members(path))
    path.write_text("", encoding="utf-8")
    with pytest.raises(json.JSONDecodeError, match=r"Expecting value: line 1 column 1 \(char 0\)"):
        list(read_members(path))


def test_unread_items_are_skipped(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text('{"a":[{"b":[1,2]},3],"frames":[4,5,6],"z":"end"}', encoding="utf-8")
    seen = {}
    for key, value in read_members(path, ("frames",), chunk=2):
        seen[key] = next(value) if isinstance(value, Items) else value
    assert seen == {"a": [{"b": [1, 2]}, 3], "frames": 4, "z": "end"}


def test_write_object_writes_the_bytes_of_dumps_json(tmp_path):
    items = [{"faces": [{"bbox": [1.0, 2.5, 3, 4], "track_id": 1, "speaker": "SPEAKER_\u00e9"}], "frame": 0},
             {"frame": 1, "faces": []}]
    members = {"width": 320, "engine": "m\u00e9dia", "fps": 25, "model": {"z": 1, "a": [1.5]}}
    path = tmp_path / "out.json"
    write_object(path, members, "frames", (compact(item) for item in items), late=lambda: {"height": 180})
    assert path.read_bytes() == dumps_json({**members, "frames": items, "height": 180}, compact=True).encode()
    write_object(path, {}, "frames", iter(()))
    assert path.read_text(encoding="utf-8") == '{"frames":[]}\n'


def test_write_object_is_atomic_and_checks_late_keys(tmp_path):
    path = tmp_path / "out.json"

    def failing():
        yield "1"
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        write_object(path, {"a": 1}, "frames", failing())
    with pytest.raises(ValueError, match="sort after"):
        write_object(path, {}, "frames", iter(["1"]), late=lambda: {"fps": 25})
    assert list(tmp_path.iterdir()) == []


def without_landmarks(value):
    """``value`` with every ``landmarks`` member that holds an array of arrays of numbers and is followed by another
    member (in the compact text) left out: what ``read_document(..., without=("landmarks",))`` must give."""
    if isinstance(value, list):
        return [without_landmarks(v) for v in value]
    if not isinstance(value, dict):
        return value
    keys = list(value)
    return {k: without_landmarks(v) for i, (k, v) in enumerate(value.items())
            if not (k == "landmarks" and i < len(keys) - 1 and isinstance(v, list) and v
                    and all(isinstance(p, list) and all(type(n) in (int, float) for n in p) for p in v))}


@pytest.mark.parametrize("chunk", [1, 2, 5, 13, 64, 1 << 20])
def test_reading_without_landmarks_equals_the_full_load_without_them(tmp_path, chunk):
    """Landmarks cut anywhere by the read blocks are left out whole; a landmarks member that is the object's last,
    holds no numbers, or sits inside a string stays; every other value is the full load's."""
    rnd = random.Random(5)
    frames = []
    for n in range(40):
        face = {"bbox": [1.5, 2, 3, 4], "landmarks": [[rnd.uniform(-9, 9) for _ in range(3)] for _ in range(30)],
                "score": 0.9, "track_id": n}
        odd = [{"landmarks": [[1, 2]]}, {"landmarks": [["a", 1]], "x": 1}, {"landmarks": [], "x": 1},
               {"note": 'say "landmarks":[[1,2]], twice', "z": 2}]
        frames.append({"faces": [face, odd[n % 4]], "frame": n})
    document = {"fps": 25, "frames": frames, "height": 360}
    path = tmp_path / "faces.json"
    path.write_text(compact(document), encoding="utf-8")
    header, items = read_document(path, "frames", chunk, without=("landmarks",))
    items = list(items)
    assert {**header, "frames": items} == without_landmarks(document)
    assert "landmarks" not in str(without_landmarks(document)["frames"][0]["faces"][0])
