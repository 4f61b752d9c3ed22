"""The captioned shapes data set and its pixel-statistics checker."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from diffusers_hub_latent_diffusion import shapes


def test_dataset_is_deterministic_and_well_formed() -> None:
    a_images, a_captions, a_specs = shapes.make_dataset(64, seed=3)
    b_images, b_captions, b_specs = shapes.make_dataset(64, seed=3)
    c_images, _, _ = shapes.make_dataset(64, seed=4)
    assert a_images.shape == (64, 32, 32, 3) and a_images.dtype == np.uint8
    np.testing.assert_array_equal(a_images, b_images)
    assert a_captions == b_captions and a_specs == b_specs
    assert not np.array_equal(a_images, c_images)
    assert shapes.make_dataset(2, seed=0, resolution=16)[0].shape == (2, 16, 16, 3)


def test_captions_describe_their_images() -> None:
    _, captions, specs = shapes.make_dataset(300, seed=1)
    named = Counter()
    for text, spec in zip(captions, specs, strict=True):
        wanted = shapes.parse_prompt(text)
        assert (wanted["colour"], wanted["shape"]) == (spec.colour, spec.shape)
        for key in ("position", "size"):
            if wanted[key] is not None:
                assert wanted[key] == getattr(spec, key)
                named[key] += 1
        assert set(text.split()) <= set(shapes.vocabulary())
    # Both optional attributes are named often, but not always.
    assert 0.2 * len(captions) < named["size"] < 0.8 * len(captions)
    assert 0.4 * len(captions) < named["position"] < 0.95 * len(captions)


def test_parse_prompt_rejects_other_text() -> None:
    assert shapes.parse_prompt("a small red circle on the left") == {
        "colour": "red",
        "shape": "circle",
        "position": "left",
        "size": "small",
    }
    assert shapes.parse_prompt("A Blue Square")["position"] is None
    for text in ("a purple circle", "a red hexagon", "a red circle somewhere", "red circle"):
        with pytest.raises(ValueError, match="not a caption"):
            shapes.parse_prompt(text)


def test_held_out_prompts_are_balanced_and_never_trained_on() -> None:
    held = shapes.held_out_prompts()
    assert len(held) == 50 == len(set(held))
    pairs = Counter(
        (shapes.parse_prompt(p)["colour"], shapes.parse_prompt(p)["shape"]) for p in held
    )
    assert len(pairs) == 12 and min(pairs.values()) >= 4
    _, captions, _ = shapes.make_dataset(3000, seed=0)
    assert not set(captions) & set(held)
    # Their colour-shape pairs are still trained on, under other captions.
    assert {
        (shapes.parse_prompt(c)["colour"], shapes.parse_prompt(c)["shape"]) for c in captions
    } == set(pairs)


def test_checker_reads_real_images_correctly() -> None:
    images, _, specs = shapes.make_dataset(1000, seed=123)
    verdicts = [shapes.check_image(image) for image in images]
    for key in ("colour", "shape", "position", "size"):
        rate = np.mean(
            [getattr(v, key) == getattr(s, key) for v, s in zip(verdicts, specs, strict=True)]
        )
        assert rate >= 0.95, (key, rate)
    # Float images in [0, 1] are read the same way.
    floats = shapes.check_image(images[0].astype(np.float32) / 255.0)
    assert (floats.colour, floats.shape) == (verdicts[0].colour, verdicts[0].shape)


def test_checker_on_images_without_a_shape_and_with_noise() -> None:
    grey = np.full((32, 32, 3), 200, dtype=np.uint8)
    assert shapes.check_image(grey) == shapes.Verdict(None, None, None, None)
    with pytest.raises(ValueError, match="RGB"):
        shapes.check_image(np.zeros((32, 32)))
    # A stray saturated speck does not fool it: the largest region decides.
    rng = np.random.default_rng(0)
    image = shapes.render(shapes.ShapeSpec("blue", "square", "right", "large"), rng)
    image[1, 1] = (255, 0, 0)
    verdict = shapes.check_image(image)
    assert (verdict.colour, verdict.shape, verdict.position, verdict.size) == (
        "blue",
        "square",
        "right",
        "large",
    )


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_each_shape_is_recognised_in_every_colour(shape: str) -> None:
    rng = np.random.default_rng(7)
    for colour in shapes.COLOURS:
        image = shapes.render(shapes.ShapeSpec(colour, shape, "center", "large"), rng)
        verdict = shapes.check_image(image)
        assert (verdict.colour, verdict.shape) == (colour, shape)
