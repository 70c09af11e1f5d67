"""Preprocessing in numpy: the same pixels as torch's antialiased resize, the spec's value space, layouts."""

from __future__ import annotations

import numpy as np
import pytest

from edgevc.sampling import assemble, preprocess, preprocess_frame, resize_crop
from edgevc.sampling.preprocess import resized_size
from edgevc.spec import PreprocSpec

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("h, w, short", [(256, 340, 128), (720, 1280, 224), (100, 80, 200), (144, 176, 112)])
def test_resize_matches_torch_antialiased_bilinear(h, w, short):
    img = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    rh, rw = resized_size(h, w, short)
    crop = (min(rh, short), min(rw, short))
    ours = resize_crop(img, short, crop)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    ref = torch.nn.functional.interpolate(t, size=(rh, rw), mode="bilinear", antialias=True, align_corners=False)
    ref = ref[0].permute(1, 2, 0).numpy()
    top, left = (rh - crop[0]) // 2, (rw - crop[1]) // 2
    ref = ref[top:top + crop[0], left:left + crop[1]]
    assert ours.shape == (*crop, 3)
    assert np.abs(ours - ref).max() < 5e-3, np.abs(ours - ref).max()


def test_i3d_value_space_is_minus_one_to_one():
    spec = PreprocSpec(crop=(2, 2), value_range=(-1.0, 1.0))
    frame = np.array([[[0, 255, 51]] * 2] * 2, dtype=np.uint8)
    out = preprocess_frame(frame, spec)
    assert np.allclose(out[0, 0], [-1.0, 1.0, 51 / 255 * 2 - 1], atol=1e-6)


def test_imagenet_normalisation_and_bgr_order():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    frame = np.full((4, 4, 3), [10, 128, 250], dtype=np.uint8)
    rgb = preprocess_frame(frame, PreprocSpec(crop=(4, 4), mean=mean, std=std))
    expect = (np.array([10, 128, 250]) / 255 - mean) / std
    assert np.allclose(rgb[0, 0], expect, atol=1e-5)
    bgr = preprocess_frame(frame, PreprocSpec(crop=(4, 4), mean=mean[::-1], std=std[::-1], channel_order="BGR"))
    assert np.allclose(bgr[0, 0], ((np.array([250, 128, 10]) / 255) - mean[::-1]) / std[::-1], atol=1e-5)


@pytest.mark.parametrize("layout, shape", [("NCTHW", (1, 3, 5, 8, 6)), ("NTCHW", (1, 5, 3, 8, 6)),
                                           ("NTHWC", (1, 5, 8, 6, 3))])
def test_layouts(layout, shape):
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 6, 3), dtype=np.uint8)
    spec = PreprocSpec(crop=(8, 6), layout=layout)
    x = preprocess(frames, spec)
    assert x.shape == shape and x.dtype == np.float32
    per_frame = np.stack([preprocess_frame(f, spec) for f in frames])
    assert np.array_equal(assemble(per_frame, spec), x)


def test_centre_crop_takes_the_middle():
    frame = np.zeros((6, 10, 3), dtype=np.uint8)
    frame[1:5, 3:7] = 255
    out = resize_crop(frame, None, (4, 4))
    assert np.all(out == 255)


def test_frame_smaller_than_crop_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the crop"):
        resize_crop(np.zeros((50, 60, 3), np.uint8), None, (112, 112))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        preprocess_frame(np.zeros((50, 60), np.uint8), PreprocSpec(crop=(10, 10)))
