import torch
from torch import nn

from harness.models.train import recalibrate_batchnorm


def test_batchnorm_statistics_are_re_estimated_from_the_data_and_momentum_kept():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.01))
    inputs = torch.randn(128, 3, 8, 8) * 3 + 2
    before = network[1].running_mean.clone()  # zeros: a slow momentum leaves it far from the data
    recalibrate_batchnorm(network, inputs, batch_size=32)
    with torch.no_grad():
        features = network[0](inputs)
    assert torch.allclose(network[1].running_mean, features.mean((0, 2, 3)), atol=1e-4)
    assert not torch.allclose(before, network[1].running_mean)
    assert network[1].momentum == 0.01
