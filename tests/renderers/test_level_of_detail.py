"""The progressive-growing schedule (VolumeGAN ``ProgressScheduler``) and the fade weight."""

import pytest

from gan3d.renderers.level_of_detail import LevelOfDetailSchedule, fade_in_alpha, level_of_detail

FFHQ = dict(init_lod=3, training_img=750e3, transition_img=750e3)


@pytest.mark.parametrize(("seen", "lod"), [
    (0, 3.0), (749_999, 3.0), (750e3, 3.0),             # first octave: fixed level
    (937_500, 2.75), (1.125e6, 2.5),                     # fading 64 px in
    (1.5e6, 2.0), (2.25e6, 2.0), (2.625e6, 1.5),         # 64 px, then fading 128 px in
    (3.75e6, 1.0), (4.125e6, 0.5), (4.5e6, 0.0),         # 256 px reached after 4.5M images
    (25e6, 0.0),                                         # and kept
])
def test_level_of_detail_matches_the_hand_computed_schedule(seen, lod):
    assert level_of_detail(seen, **FFHQ) == pytest.approx(lod)


def test_without_transition_the_level_drops_by_whole_octaves():
    values = [level_of_detail(n, init_lod=2, training_img=10, transition_img=0) for n in (0, 9, 10, 19, 20, 40)]
    assert values == [2.0, 2.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs", [dict(init_lod=-1, training_img=1, transition_img=1),
                                    dict(init_lod=3, training_img=0, transition_img=0),
                                    dict(init_lod=3, training_img=-5, transition_img=10)])
def test_bad_schedules_are_refused(kwargs):
    with pytest.raises(ValueError, match="level_of_detail"):
        level_of_detail(0, **kwargs)


@pytest.mark.parametrize(("lod", "alpha"), [(3.0, 0.0), (2.9, 0.1), (2.5, 0.5), (2.25, 0.75), (2.0, 1.0),
                                            (1.5, 1.0), (0.0, 1.0)])
def test_fade_in_alpha_of_the_64px_octave(lod, alpha):
    # The 64-px octave of a 32 -> 256 network has level 2: absent at 3, half at 2.5, fully in from 2.
    assert fade_in_alpha(lod, 2) == pytest.approx(alpha)


def test_schedule_updates_every_minibatch_repeats_steps_and_on_the_first_call():
    schedule = LevelOfDetailSchedule(init_lod=3, training_kimg=750, transition_kimg=750, minibatch_repeats=4)
    assert schedule.initial() == 3.0
    # A resumed run starts at step 6 (not a multiple of 4): the first call still updates.
    lod = schedule.update(6, 1125.0, 3.0)
    assert lod == pytest.approx(2.5)
    # Steps 7 and 9 keep the value even though more images were seen; step 8 updates.
    assert schedule.update(7, 1200.0, lod) == lod
    lod8 = schedule.update(8, 1200.0, lod)
    assert lod8 == pytest.approx(3 - (1200 - 750) / 750) and lod8 != lod
    assert schedule.update(9, 1300.0, lod8) == lod8


def test_disabled_schedule_stays_at_full_resolution():
    schedule = LevelOfDetailSchedule(init_lod=3, training_kimg=750, transition_kimg=750, enabled=False)
    assert schedule.initial() == 0.0
    assert schedule.update(0, 0.0, 0.0) == 0.0


def test_bad_cadence_is_refused():
    with pytest.raises(ValueError, match="minibatch_repeats"):
        LevelOfDetailSchedule(init_lod=3, training_kimg=1, transition_kimg=1, minibatch_repeats=0)
