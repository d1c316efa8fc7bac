"""Progressive growing by level of detail (LOD), as PGGAN and VolumeGAN schedule it.

The level of detail ``lod`` counts the octaves still missing below the final resolution: ``lod = L``
trains the lowest resolution, ``lod = 0`` the final one, and a fractional ``lod`` fades the next
octave in. Source: genforce/volumegan ``runners/controllers/progress_scheduler.py``
``ProgressScheduler.execute_before_iteration`` (the schedule) and ``models/volumegan_generator.py``
``SynthesisNetwork.forward`` / ``models/volumegan_discriminator.py`` ``VolumeGANDiscriminator.forward``
(how a network reads it)::

    phase, sub = divmod(seen_img, training_img + transition_img)
    lod = max(L - phase - max(sub - training_img, 0) / transition_img, 0)

so each octave trains ``training_img`` images at a fixed level, then fades the next one in over
``transition_img`` images. The scheduler recomputes ``lod`` only every ``minibatch_repeats``
iterations (and at the first one after a start): :class:`LevelOfDetailSchedule` keeps that rule.
"""

from __future__ import annotations

import math

__all__ = ["level_of_detail", "fade_in_alpha", "LevelOfDetailSchedule"]


def level_of_detail(seen_img: float, *, init_lod: float, training_img: float, transition_img: float) -> float:
    """The level of detail after ``seen_img`` real images (``ProgressScheduler`` formula).

    Example (VolumeGAN FFHQ-256: 32 -> 256 px, 750k + 750k images per octave):
        >>> [level_of_detail(n, init_lod=3, training_img=750e3, transition_img=750e3)
        ...  for n in (0, 750e3, 1125e3, 1.5e6, 4.5e6, 9e6)]
        [3.0, 3.0, 2.5, 2.0, 0.0, 0.0]
    """
    if init_lod < 0 or training_img < 0 or transition_img < 0 or training_img + transition_img <= 0:
        raise ValueError(f"level_of_detail needs init_lod >= 0 and non-negative training_img/transition_img with a "
                         f"positive sum; got {init_lod}, {training_img}, {transition_img}")
    if seen_img < 0:
        raise ValueError(f"seen_img must be >= 0, got {seen_img}")
    phase, sub = divmod(float(seen_img), float(training_img + transition_img))
    lod = init_lod - phase
    if transition_img:
        lod -= max(sub - training_img, 0.0) / transition_img
    return max(lod, 0.0)


def fade_in_alpha(lod: float, octave_lod: int) -> float:
    """How much of the octave whose own level is ``octave_lod`` shows at ``lod``: 1 once it is in
    (``lod <= octave_lod``), 0 before it is computed (``lod >= octave_lod + 1``) and ``ceil(lod) - lod``
    while it fades in. VolumeGAN ``SynthesisNetwork.forward`` blends
    ``alpha * octave_image + (1 - alpha) * nearest_upsample(previous image)``.

    Example:
        >>> [fade_in_alpha(lod, 2) for lod in (3.0, 2.75, 2.5, 2.0, 0.0)]
        [0.0, 0.25, 0.5, 1.0, 1.0]
    """
    if lod <= octave_lod:
        return 1.0
    if lod >= octave_lod + 1:
        return 0.0
    return math.ceil(lod) - lod


class LevelOfDetailSchedule:
    """The level of detail as a training-step function, with the scheduler's update cadence.

    ``update(step, kimg)`` recomputes ``lod`` from ``kimg * 1000`` seen images when ``step %
    minibatch_repeats == 0`` (the official 1-based ``iter % 4 == 1``) or on the first call (the first
    iteration after a start or resume), and otherwise keeps the previous value. With ``enabled=False``
    the level stays 0 (the full network from the start: VolumeGAN without ``--use_pg``).

    Args:
        init_lod: the starting level, ``log2(final / initial resolution)``.
        training_kimg, transition_kimg: thousands of images per octave at a fixed level and fading
            in (VolumeGAN FFHQ-256: 750 and 750).
        minibatch_repeats: steps between updates (4).
        enabled: progressive growing on.
    """

    def __init__(self, *, init_lod: float, training_kimg: float, transition_kimg: float, minibatch_repeats: int = 4,
                 enabled: bool = True) -> None:
        if minibatch_repeats < 1:
            raise ValueError(f"minibatch_repeats must be >= 1, got {minibatch_repeats}")
        level_of_detail(0, init_lod=init_lod, training_img=training_kimg * 1e3, transition_img=transition_kimg * 1e3)
        self.init_lod = float(init_lod)
        self.training_kimg = float(training_kimg)
        self.transition_kimg = float(transition_kimg)
        self.minibatch_repeats = minibatch_repeats
        self.enabled = enabled
        self._started = False

    def initial(self) -> float:
        """The level before any training step: ``init_lod``, or 0 when disabled."""
        return self.init_lod if self.enabled else 0.0

    def update(self, step: int, kimg: float, current: float) -> float:
        """The level for training step ``step`` (0-based) after ``kimg`` thousand images, given the
        ``current`` one (returned unchanged between updates)."""
        if not self.enabled:
            return 0.0
        if self._started and step % self.minibatch_repeats:
            return current
        self._started = True
        return level_of_detail(kimg * 1e3, init_lod=self.init_lod, training_img=self.training_kimg * 1e3,
                               transition_img=self.transition_kimg * 1e3)
