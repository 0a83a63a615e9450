"""Chapter 01's colored digits: the ColoredMNIST recipe on scikit-learn's digits."""

import builtins

import numpy as np
import pytest
import torch

from mmnb.protocol import Result, World
from mmnb.runtime import stream
from mmnb.train import History
from mmnb.worlds import snr
from mmnb.worlds.snr import digits, measures

CFG = snr.DigitsConfig()


@pytest.fixture(scope="module")
def splits():
    out = snr.DigitsWorld(CFG, 0, replicas=8).splits()
    return out["train"], out["test"]


def test_world_protocol():
    world = snr.DigitsWorld(CFG, 0, "cpu", replicas=[0, 3])
    assert isinstance(world, World) and world.PURPOSES == ("train", "test", "test_same")
    splits = world.splits()
    for purpose in world.PURPOSES:
        part = world.sample(splits[purpose].grey.shape[0], purpose)
        assert torch.equal(part.color, splits[purpose].color)
        assert torch.equal(part.label, splits[purpose].label)
    few = world.sample(5, "test")
    assert few.grey.shape == (5, 8, 8) and few.label.shape == few.color.shape == (2, 5)
    assert few.replicas == 2
    with pytest.raises(ValueError, match="purpose"):
        world.sample(5, "val")
    with pytest.raises(ValueError, match="n=5000"):
        world.sample(5000, "train")


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


def test_replica_draws_depend_only_on_their_replica():
    a = snr.DigitsWorld(CFG, 3, replicas=[0, 1, 2]).splits()
    b = snr.DigitsWorld(CFG, 3, replicas=[1]).splits()
    for name in ("train", "test", "test_same"):
        assert torch.equal(a[name].color[1], b[name].color[0])
        assert torch.equal(a[name].label[1], b[name].label[0])
    assert not torch.equal(a["train"].color[0], a["train"].color[1])


def test_held_out_images_in_both_color_laws():
    out = snr.DigitsWorld(CFG, 0, replicas=4).splits()
    test, same = out["test"], out["test_same"]
    assert torch.equal(test.grey, same.grey) and torch.equal(test.label, same.label)
    p = 0.775 + 0.225 / 10
    assert (same.color == same.digit).float().mean().item() == pytest.approx(p, abs=0.03)
    assert (test.color == 9 - test.digit).float().mean().item() == pytest.approx(p, abs=0.03)
    # the color is drawn from the true digit: it names the noisy label less often
    agree = out["train"].color_agreement().mean().item()
    assert agree == pytest.approx(0.9 * p + 0.1 * 0.225 / 10, abs=0.03)


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
    digit_only = train.captions(caption="digit")[0, 7]
    assert digit_only[10:].sum() == 0 and digit_only[int(train.digit[7])] == 1
    with pytest.raises(ValueError, match="caption"):
        train.captions(caption="color")


def test_per_replica_batches_index_each_row(splits):
    train, _ = splits
    index = torch.tensor([[0, 5, 9], [3, 3, 1]] + [[0, 1, 2]] * 6)
    images, caps = train.images(index), train.captions(index)
    assert images.shape == (8, 3, 3, 8, 8) and caps.shape == (8, 3, 20)
    torch.testing.assert_close(images[1, 0], train.images()[1, 3])
    torch.testing.assert_close(caps[0, 2], train.captions()[0, 9])


def test_augmentation_keeps_hue(splits):
    train, _ = splits
    images = train.images(torch.arange(16))[:2]
    draws = digits.crop_draws([stream(0, "augment", r) for r in (0, 1)], 16, images.device)
    out = digits.augment(images, draws)
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


def test_config_validation():
    assert snr.DigitsConfig.from_profile("paper").digits_source == "mnist"
    for bad, match in [
        (dict(digits_source="cifar"), "digits_source"),
        (dict(digits_p_color=1.5), "digits_p_color"),
        (dict(digits_steps=0), "digits_steps"),
    ]:
        with pytest.raises(ValueError, match=match):
            snr.DigitsConfig(**bad)


def test_fit_smoke():
    cfg = snr.DigitsConfig(digits_steps=3, digits_batch_size=64)
    for model in ("single", "multi"):
        out = snr.fit_digits(cfg, model, 0, 2, progress=False)
        assert isinstance(out, Result) and out.history["loss"].shape[1] == 2
        for values in (out.train_acc, out.test_acc, out.test_same_law_acc):
            assert values.shape == (2,) and np.all((0 <= values) & (values <= 1))
    with pytest.raises(ValueError, match="model"):
        snr.fit_digits(cfg, "triple", 0, 1, progress=False)
    with pytest.raises(ValueError, match="digits_source"):
        snr.fit_digits(cfg.replace(digits_source="none"), "single", 0, 1, progress=False)


def _color_only(x: torch.Tensor) -> torch.Tensor:
    """One-hot of the painted color (the nearest of `COLORS` in direction): `[R, N, 10]`."""
    rgb = x.unflatten(-1, (3, -1)).sum(-1)  # [R, N, 3]
    unit = digits.COLORS / digits.COLORS.norm(dim=-1, keepdim=True)
    nearest = (rgb / rgb.norm(dim=-1, keepdim=True) @ unit.T).argmax(-1)
    return torch.nn.functional.one_hot(nearest, 10).float()


def _shape_only(x: torch.Tensor) -> torch.Tensor:
    """The grey image scaled to a maximum of 1: the same for every color, `[R, N, H·W]`."""
    grey = x.unflatten(-1, (3, -1)).sum(-2)
    return grey / grey.amax(-1, keepdim=True)


def _reliance(encoder, splits) -> np.ndarray:
    accs = measures.probe_digits(encoder, splits)
    return snr.DigitsFit("single", None, History(), encoder, **accs).color_reliance


def test_color_reliance_of_known_encoders():
    """Features that see the color only are read as the color's label: the probe's
    accuracies are the fractions painted in the label's color, under each law; features
    blind to the color score the same under both laws (color reliance 0)."""
    splits = snr.DigitsWorld(CFG, 0, replicas=3).splits()
    test, same = splits["test"], splits["test_same"]
    same_law = (same.color == same.label).float().mean(-1).numpy()
    reversed_law = (test.color == test.label).float().mean(-1).numpy()
    assert np.all(same_law > 0.6) and np.all(reversed_law < 0.1)  # the recipe's laws
    np.testing.assert_allclose(_reliance(_color_only, splits), same_law - reversed_law)
    np.testing.assert_array_equal(_reliance(_shape_only, splits), np.zeros(3))
