"""The config schema: validates, fills defaults, documents every key."""

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import ROOT

SCHEMA = ROOT / "config" / "schema.yaml"
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def walk(schema, path="config"):
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{key}")


def test_every_key_is_described_and_has_a_default():
    for path, node in walk(yaml.safe_load(SCHEMA.read_text())):
        assert node.get("description"), f"{path} has no description"
        if path != "config":
            assert "default" in node, f"{path} has no default"


def test_shipped_config_is_valid_and_defaults_fill_a_minimal_one():
    validate(copy.deepcopy(CONFIG), str(SCHEMA))
    minimal = {"input_dir": "x"}
    validate(minimal, str(SCHEMA))
    assert minimal["convert"]["encoder"] == "auto" and minimal["extract"]["max_ratio"] == 100


@pytest.mark.parametrize("patch", [{"convert": {"encoder": "x265"}}, {"extract": {"max_members": 0}},
                                   {"unknown_key": 1}, {"convert": {"audio_bitrate": "fast"}}])
def test_bad_values_are_rejected(patch):
    config = {**copy.deepcopy(CONFIG), **patch}
    with pytest.raises(WorkflowError):
        validate(config, str(SCHEMA))
