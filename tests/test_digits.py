"""Colored digits: the ColoredMNIST recipe on scikit-learn's digits."""

import builtins

import numpy as np
import pytest
import torch

from mmnb.worlds import digits


@pytest.fixture(scope="module")
def splits():
    return digits.make_colored_digits(list(range(8)))


def test_grey_images_and_fixed_split():
    grey = digits.load_grey("sklearn")
    assert grey["train_images"].shape == (1200, 8, 8)
    assert grey["test_images"].shape == (597, 8, 8)
    assert 0.0 <= grey["train_images"].min() and grey["train_images"].max() <= 1.0
    assert set(grey["train_digits"].unique().tolist()) == set(range(10))


def test_shapes(splits):
    train, test = splits
    assert train.label.shape == train.color.shape == (8, 1200)
    assert train.images().shape == (8, 1200, 3, 8, 8)
    assert test.images(torch.arange(5)).shape == (8, 5, 3, 8, 8)
    assert train.captions().shape == (8, 1200, 20)


def test_color_correlation_and_label_noise_rates(splits):
    train, test = splits
    # digit k is painted c_k with probability 0.775, else a uniformly random color (which
    # is c_k one time in ten): P(color = c_digit) = 0.775 + 0.225 / 10
    p = 0.775 + 0.225 / 10
    agree = (train.color == train.digit).float().mean().item()
    assert agree == pytest.approx(p, abs=0.02)
    # at test the correlation is reversed: digit k is painted c_(9-k)
    reversed_ = (test.color == 9 - test.digit).float().mean().item()
    assert reversed_ == pytest.approx(p, abs=0.02)
    assert (test.color == test.digit).float().mean().item() == pytest.approx(0.0225, abs=0.01)
    # 10% of the labels are replaced by a different class
    assert train.label_noise_rate().mean().item() == pytest.approx(0.1, abs=0.015)
    assert test.label_noise_rate().mean().item() == pytest.approx(0.1, abs=0.02)
    wrong = train.label != train.digit
    assert (train.label[wrong] != train.digit.expand_as(train.label)[wrong]).all()


def test_replica_draws_depend_only_on_their_seed():
    a_train, _ = digits.make_colored_digits([3, 4, 5])
    b_train, _ = digits.make_colored_digits([4])
    assert torch.equal(a_train.color[1], b_train.color[0])
    assert torch.equal(a_train.label[1], b_train.label[0])


def test_paint_and_captions(splits):
    train, _ = splits
    img = train.images()[0, 7]  # [3, 8, 8]
    rgb = digits.COLORS[train.color[0, 7]]
    grey = train.grey[7]
    torch.testing.assert_close(img, grey[None] * rgb[:, None, None])
    cap = train.captions()[0, 7]
    assert cap.sum() == 2
    assert cap[int(train.digit[7])] == 1 and cap[10 + int(train.color[0, 7])] == 1
    noisy = train.captions(noisy=True)[0, 7]
    assert noisy[int(train.label[0, 7])] == 1


def test_augmentation_keeps_hue(splits):
    train, _ = splits
    images = train.images(torch.arange(16))[:2]
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    out = digits.augment(images, gens)
    assert out.shape == images.shape
    # every pixel of an augmented image is a non-negative multiple of the image's color
    rgb = digits.COLORS[train.color[:2, :16]]  # [2, 16, 3]
    unit = rgb / rgb.norm(dim=-1, keepdim=True)
    pixels = out.permute(0, 1, 3, 4, 2)  # [2, 16, 8, 8, 3]
    along = (pixels * unit[:, :, None, None]).sum(-1, keepdim=True)
    residual = pixels - along * unit[:, :, None, None]
    assert residual.abs().max().item() < 1e-5
    assert (out >= 0).all()
    assert not torch.allclose(out, images)  # it does change the image


def test_mnist_without_torchvision_says_what_to_do(monkeypatch):
    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError("No module named 'torchvision'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(digits.DataUnavailable, match="torchvision.*sklearn"):
        digits.load_grey("mnist")


def test_unknown_source():
    with pytest.raises(ValueError, match="digits_source"):
        digits.load_grey("cifar")


def test_run_smoke():
    out = digits.run([0, 1], steps=3, batch_size=64, progress=False)
    for model in ("single", "multi"):
        for key in ("train_acc", "test_acc"):
            values = out[model][key]
            assert values.shape == (2,) and np.all((0 <= values) & (values <= 1))
    with pytest.raises(ValueError, match="consecutive"):
        digits.run([0, 2], steps=1, progress=False)
