"""Random draws with and without a torch.Generator, eager and under torch.compile."""

import torch

from gan3d.core.random_draws import normal, randint, uniform


def test_seeded_draws_repeat_and_unseeded_follow_the_global_rng():
    a = uniform((3, 4), generator=torch.Generator().manual_seed(5))
    b = uniform((3, 4), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 4) and 0 <= a.min() and a.max() < 1
    torch.manual_seed(7)
    first = (normal((2,)), randint(10, (6,)))
    torch.manual_seed(7)
    second = (normal((2,)), randint(10, (6,)))
    torch.testing.assert_close(first[0], second[0])
    assert torch.equal(first[1], second[1]) and first[1].dtype == torch.int64 and 0 <= first[1].min() < 10


def test_unseeded_draws_compile_with_a_dynamic_batch_size():
    """An explicit generator=None picks an overload without symbolic-shape support: compiling a
    generator whose batch size changes failed (tools/bench.py --compile at batch 4 after batch 1)."""

    def draws(x):
        n = x.shape[0]
        return x[:, None] + uniform((n, 3)) + normal((n, 3)) + randint(4, (n, 3))

    compiled = torch.compile(draws, dynamic=True, backend="eager")  # dynamo traces: no C++ compiler needed
    for n in (2, 5):
        out = compiled(torch.zeros(n))
        assert out.shape == (n, 3) and torch.isfinite(out).all()
