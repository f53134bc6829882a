from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.data import synthetic
from harness.data.dataset import Dataset, ImageSet
from harness.models import train, zoo
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


@pytest.fixture
def untrained_entry(monkeypatch, tmp_path) -> Dataset:
    """A zoo entry exported with seeded weights (no epochs), a cache of its own, and a four-image dataset."""
    monkeypatch.setenv("NCAP_CACHE", str(tmp_path))
    monkeypatch.setitem(zoo.ZOO, "race", zoo.ZooEntry(
        lambda classes: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes)),
        zoo.TrainingPlan(epochs=0, batch_size=4), "test"))
    split = ImageSet(np.zeros((4, 64, 64, 3), np.uint8), np.zeros(4, np.int64))
    return Dataset("zeros", synthetic.CLASSES, split, split, split, "zeros")



def _lose_the_race(monkeypatch, dataset: Dataset, with_record: bool) -> Path:
    """The model's cache folder, which another worker renames into place while this one is still exporting."""
    folder = train.trained_model("race", dataset, progress=lambda line: None).card.onnx.parent
    theirs = folder.with_name("theirs")
    folder.rename(theirs)
    if not with_record:
        (theirs / "trained.json").unlink()
    export = train._train_and_export

    def export_while_another_worker_finishes(name, entry, dataset, out, progress):
        export(name, entry, dataset, out, progress)
        theirs.rename(folder)

    monkeypatch.setattr(train, "_train_and_export", export_while_another_worker_finishes)
    return folder


def test_a_model_another_worker_cached_first_is_used_and_the_staging_folder_removed(monkeypatch, untrained_entry):
    folder = _lose_the_race(monkeypatch, untrained_entry, with_record=True)
    trained = train.trained_model("race", untrained_entry, progress=lambda line: None)
    assert trained.card.onnx == folder / "model.onnx" and trained.card.onnx.is_file()
    assert sorted(path.name for path in folder.parent.iterdir()) == [folder.name]


def test_a_folder_in_the_way_without_a_finished_model_is_an_error(monkeypatch, untrained_entry):
    folder = _lose_the_race(monkeypatch, untrained_entry, with_record=False)
    with pytest.raises(OSError):
        train.trained_model("race", untrained_entry, progress=lambda line: None)
    assert sorted(path.name for path in folder.parent.iterdir()) == [folder.name]
