from vidflow.naming import archive_stem, slugify, unique_slugs, video_stem


def test_slugify_keeps_safe_characters_and_folds_the_rest():
    assert slugify("Interview 01 (final).mp4") == "Interview_01_final_.mp4"
    assert slugify("Café – Übung") == "Cafe_Ubung"
    assert slugify("--rm -rf") == "rm_-rf"
    assert slugify("..hidden") == "hidden"
    assert slugify("日本語") == "video"
    assert slugify("a'b\"c") == "a_b_c"


def test_archive_stem_handles_multi_part_suffixes():
    assert archive_stem("talks.tar.gz") == "talks"
    assert archive_stem("Talks.TGZ") == "Talks"
    assert archive_stem("x.7z") == "x"
    assert archive_stem("clip.mp4") is None
    assert archive_stem(".zip") is None


def test_video_stem_uses_last_component():
    assert video_stem("a/b/My Clip.MOV") == "My Clip"
    assert video_stem("dir\\win name.mp4") == "win name"


def test_unique_slugs_disambiguate_in_order_and_case_insensitively():
    assert unique_slugs(["a b", "a_b", "A B", "c"]) == ["a_b", "a_b_2", "A_B_3", "c"]
