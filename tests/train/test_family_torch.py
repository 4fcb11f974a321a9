"""The family as PyTorch modules."""

import pytest

from edgefer.train.models.configs import SIZES, VARIANTS, StudentConfig

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size", SIZES)
def test_torch_module_matches_config(variant, size):
    from edgefer.train.models.family import StudentNet

    config = StudentConfig(variant, size)
    model = StudentNet(config).eval()
    assert sum(p.numel() for p in model.parameters()) == config.param_count()
    with torch.no_grad():
        assert model(torch.rand(3, 1, 84, 84) * 255).shape == (3, 8)


def test_create_model_by_alias():
    from edgefer.train.models.registry import create_model

    model = create_model("microexpnet")
    assert sum(p.numel() for p in model.parameters()) == 65_000
