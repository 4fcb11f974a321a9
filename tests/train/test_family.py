"""The MicroExpNet family and the registry: shapes, TF padding, exact parameter counts."""

import json
import subprocess
import sys

import pytest

from edgefer.train.models.configs import SIZES, VARIANTS, StudentConfig, same_padding
from edgefer.train.models.registry import canonical_name, list_models

PAPER_PARAMS = {"p12-m": 900_920, "p12-s": 232_184, "p12-xs": 120_728, "p12-xxs": 65_000}


@pytest.mark.parametrize("name,params", PAPER_PARAMS.items())
def test_param_counts_match_the_paper(name, params):
    variant, size = name.split("-")
    assert StudentConfig(variant, size).param_count() == params


def test_tf_same_padding_puts_the_odd_pixel_after():
    assert same_padding(84, 8, 2) == (3, 3)
    assert same_padding(21, 4, 2) == (1, 2)  # docs/authors-facts.md: conv2 pads 1 before and 2 after
    assert same_padding(11, 2, 2) == (0, 1)
    assert same_padding(42, 2, 2) == (0, 0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_feature_sizes_follow_facts(variant):
    config = StudentConfig(variant, "m")
    assert config.flatten_size == (6 * 6 * 32 if variant in ("p2", "p12") else 11 * 11 * 32)
    assert config.fc1_width == (768 if variant in ("p2", "p12") else 256)


def test_registry_lists_family_teacher_and_pretrained():
    entries = {e.name: e for e in list_models()}
    assert {f"{v}-{s}" for v in VARIANTS for s in SIZES} <= set(entries)
    assert entries["p12-xxs"].aliases == ("microexpnet",)
    assert entries["inception-v3"].kind == "teacher"
    assert round(entries["inception-v3"].params / 1e6, 1) == 21.8
    assert entries["microexpnet-ck"].params == 65_000
    assert canonical_name("MicroExpNet") == "p12-xxs"
    assert canonical_name("teacher") == "inception-v3"


@pytest.mark.slow
def test_listing_models_needs_no_torch():
    code = ("import sys; from edgefer.train.models.registry import list_models; n = len(list_models()); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == 16 + 1 + 2


@pytest.mark.slow
def test_cli_models_json(edgefer):
    out = edgefer("models", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["p12-m"]["params"] == 900_920 and by_name["v-xs"]["variant"] == "v"
