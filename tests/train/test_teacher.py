"""The Inception v3 teacher: size, forward shapes, and loading torchvision-style ImageNet weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from edgefer.train.models.teacher import InceptionV3, load_imagenet_weights  # noqa: E402
from edgefer.train.models.teacher_params import check_plan, inception_v3_param_count  # noqa: E402

#: torchvision's inception_v3(aux_logits=True) has 27,161,264 parameters; its AuxLogits head
#: (conv0 768->128 1x1, conv1 128->768 5x5, fc 768->1000) accounts for 3,326,696 of them.
TORCHVISION_WITH_AUX = 27_161_264


def _fake_aux_logits(num_classes: int = 1000) -> dict[str, torch.Tensor]:
    """AuxLogits.* tensors shaped as in torchvision's InceptionAux(768, num_classes)."""
    aux: dict[str, torch.Tensor] = {}
    for name, cin, cout, k in (("conv0", 768, 128, 1), ("conv1", 128, 768, 5)):
        aux[f"AuxLogits.{name}.conv.weight"] = torch.randn(cout, cin, k, k)
        for stat, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            aux[f"AuxLogits.{name}.bn.{stat}"] = torch.full((cout,), value)
        aux[f"AuxLogits.{name}.bn.num_batches_tracked"] = torch.tensor(0)
    aux["AuxLogits.fc.weight"] = torch.randn(num_classes, 768)
    aux["AuxLogits.fc.bias"] = torch.randn(num_classes)
    return aux


#: torchvision's inception_v3(aux_logits=True) state-dict keys and shapes, written by
#: tools/torchvision_inception_keys.py from a torchvision wheel (torchvision does not import here).
TORCHVISION_KEYS = Path(__file__).parents[1] / "reference" / "torchvision_inception_v3_keys.json"


@pytest.fixture(scope="module")
def torchvision_shapes() -> dict[str, tuple[int, ...]]:
    return {key: tuple(shape) for key, shape in json.loads(TORCHVISION_KEYS.read_text())["keys"].items()}


def _is_parameter(key: str) -> bool:
    return not key.endswith(("running_mean", "running_var", "num_batches_tracked"))


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    """A synthetic torchvision-like inception_v3 state dict: our 1000-class model plus AuxLogits."""
    torch.manual_seed(0)
    source = InceptionV3(num_classes=1000)
    for module in source.modules():  # non-trivial BN statistics, so buffers are checked too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    state = dict(source.state_dict())
    state.update(_fake_aux_logits())
    return state


@pytest.fixture(scope="module")
def imagenet_file(imagenet_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "inception_v3_google.pth"
    torch.save(imagenet_state, path)
    return path


@pytest.fixture(scope="module")
def teacher() -> InceptionV3:
    torch.manual_seed(0)
    return InceptionV3().eval()


def test_channel_plan_is_consistent():
    check_plan()


@pytest.mark.parametrize(("num_classes", "in_channels"), [(8, 3), (8, 1), (1000, 3), (7, 2)])
def test_param_count_matches_pure_python_table(num_classes, in_channels):
    with torch.device("meta"):
        model = InceptionV3(num_classes=num_classes, in_channels=in_channels)
    actual = sum(p.numel() for p in model.parameters())
    assert actual == inception_v3_param_count(num_classes, in_channels)


def test_teacher_size(teacher):
    count = inception_v3_param_count()
    assert count == 21_801_960
    assert round(count / 1e6, 1) == 21.8
    assert sum(p.numel() for p in teacher.parameters()) == count
    # torchvision's ImageNet model without its auxiliary head: the widely quoted 23,834,568
    assert inception_v3_param_count(num_classes=1000) == 23_834_568


def test_synthetic_state_dict_has_torchvision_size(imagenet_state):
    assert sum(v.numel() for k, v in imagenet_state.items() if _is_parameter(k)) == TORCHVISION_WITH_AUX


@pytest.mark.parametrize("size", [299, 75])
def test_forward_shape(teacher, size):
    with torch.no_grad():
        logits = teacher(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 8)
    assert torch.isfinite(logits).all()


def test_forward_features_one_channel():
    model = InceptionV3(in_channels=1).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 1, 75, 75)).shape == (2, 2048)


def test_transform_input_is_refused():
    with pytest.raises(ValueError, match="transform_input"):
        InceptionV3(transform_input=True)


def test_state_dict_is_torchvisions_without_the_aux_head(torchvision_shapes):
    """Same keys, same shapes, same order as torchvision's inception_v3, less AuxLogits.*."""
    ours = {key: tuple(value.shape) for key, value in InceptionV3(num_classes=1000).state_dict().items()}
    theirs = {key: shape for key, shape in torchvision_shapes.items() if not key.startswith("AuxLogits.")}
    assert list(ours) == list(theirs)
    assert ours == theirs
    aux = sum(torch.Size(s).numel() for k, s in torchvision_shapes.items()
              if k.startswith("AuxLogits.") and _is_parameter(k))
    params = sum(torch.Size(s).numel() for k, s in torchvision_shapes.items() if _is_parameter(k))
    assert (params, aux) == (TORCHVISION_WITH_AUX, 3_326_696)


def test_loads_a_state_dict_with_torchvisions_keys_and_shapes(torchvision_shapes, tmp_path):
    """A file laid out exactly as torchvision's (random values, AuxLogits included) loads, 1 gray channel."""
    torch.manual_seed(1)
    state = {key: (torch.tensor(0) if key.endswith("num_batches_tracked") else torch.randn(shape))
             for key, shape in torchvision_shapes.items()}
    path = tmp_path / "inception_v3_google.pth"
    torch.save(state, path)
    model = InceptionV3(num_classes=8, in_channels=1)
    left = load_imagenet_weights(model, path)
    assert left == ["fc.weight", "fc.bias"]  # the 1000-class classifier does not fit 8 classes
    loaded = model.state_dict()
    torch.testing.assert_close(loaded["Mixed_7c.branch_pool.conv.weight"], state["Mixed_7c.branch_pool.conv.weight"])
    torch.testing.assert_close(loaded["Conv2d_1a_3x3.conv.weight"],
                               state["Conv2d_1a_3x3.conv.weight"].sum(dim=1, keepdim=True))


def test_load_imagenet_weights_round_trip(imagenet_state, imagenet_file):
    model = InceptionV3()
    fc_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("fc.")}
    left = load_imagenet_weights(model, imagenet_file)
    assert sorted(left) == ["fc.bias", "fc.weight"]
    for key, value in model.state_dict().items():
        if key.startswith("fc."):
            assert torch.equal(value, fc_before[key]), key
        else:
            assert torch.equal(value, imagenet_state[key]), key


def test_load_keeps_classifier_when_class_count_matches(imagenet_state, imagenet_file):
    model = InceptionV3(num_classes=1000)
    assert load_imagenet_weights(model, imagenet_file) == []
    assert torch.equal(model.fc.weight, imagenet_state["fc.weight"])


def test_load_one_channel_sums_first_conv(imagenet_state, imagenet_file):
    model = InceptionV3(in_channels=1)
    load_imagenet_weights(model, imagenet_file)
    expected = imagenet_state["Conv2d_1a_3x3.conv.weight"].sum(dim=1, keepdim=True)
    torch.testing.assert_close(model.Conv2d_1a_3x3.conv.weight, expected)
    assert torch.equal(
        model.Mixed_7c.branch_pool.bn.running_var, imagenet_state["Mixed_7c.branch_pool.bn.running_var"]
    )


def test_load_safetensors(imagenet_state, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "inception_v3.safetensors"
    safetensors_torch.save_file(imagenet_state, str(path))
    model = InceptionV3()
    load_imagenet_weights(model, path)
    assert torch.equal(
        model.Mixed_6e.branch7x7dbl_5.conv.weight, imagenet_state["Mixed_6e.branch7x7dbl_5.conv.weight"]
    )


def test_load_rejects_mismatched_keys(imagenet_state, tmp_path):
    state = dict(imagenet_state)
    state["Mixed_5b.branch1x1.conv.kernel"] = state.pop("Mixed_5b.branch1x1.conv.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="renamed.pth") as excinfo:
        load_imagenet_weights(InceptionV3(), path)
    message = str(excinfo.value)
    assert "missing keys: Mixed_5b.branch1x1.conv.weight" in message
    assert "unexpected keys: Mixed_5b.branch1x1.conv.kernel" in message


def test_load_rejects_wrong_shapes(imagenet_file):
    with pytest.raises(ValueError, match=r"Conv2d_1a_3x3\.conv\.weight \(32, 3, 3, 3\) vs \(32, 2, 3, 3\)"):
        load_imagenet_weights(InceptionV3(in_channels=2), imagenet_file)


def test_load_rejects_non_state_dict(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match="tensor.pth"):
        load_imagenet_weights(InceptionV3(), path)
