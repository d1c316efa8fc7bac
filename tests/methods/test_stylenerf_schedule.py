"""StyleNeRF's style mixing boundaries and real-image resize."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from gan3d.methods.stylenerf.schedule import mix_styles, resize_reals_lanczos, style_mixing_cutoff


def test_style_mixing_cutoff_boundaries_and_frequency():
    generator = torch.Generator().manual_seed(0)
    draws = [style_mixing_cutoff(17, 0.9, generator=generator) for _ in range(2000)]
    assert min(draws) == 1 and set(range(1, 18)) == set(draws)  # 1 .. 16 mixed, 17 = not mixed
    assert abs(sum(d == 17 for d in draws) / 2000 - 0.1) < 0.03
    assert {style_mixing_cutoff(17, 0.0, generator=generator) for _ in range(50)} == {17}
    assert style_mixing_cutoff(1, 1.0) == 1
    again = [style_mixing_cutoff(17, 0.9, generator=torch.Generator().manual_seed(0)) for _ in range(3)]
    assert again == [draws[0]] * 3
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        style_mixing_cutoff(17, 1.5)


def test_mix_styles_switches_rows_at_the_cutoff():
    ws, other = torch.zeros(2, 5, 3), torch.ones(2, 5, 3)
    mixed = mix_styles(ws, other, 2)
    assert mixed[:, :2].eq(0).all() and mixed[:, 2:].eq(1).all()
    assert torch.equal(mix_styles(ws, other, 5), ws) and torch.equal(mix_styles(ws, other, 0), other)


def test_resize_is_opencv_lanczos_on_the_8_bit_image():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    out = resize_reals_lanczos(images, 8)
    expected = np.stack([cv2.resize(p, (8, 8), interpolation=cv2.INTER_LANCZOS4) for p in pixels])
    torch.testing.assert_close(out, torch.from_numpy(expected).permute(0, 3, 1, 2).float() / 127.5 - 1.0)
    assert resize_reals_lanczos(images, 16) is images
    constant = torch.full((1, 3, 16, 16), 0.2)
    torch.testing.assert_close(resize_reals_lanczos(constant, 4), torch.full((1, 3, 4, 4), 153 / 127.5 - 1))
