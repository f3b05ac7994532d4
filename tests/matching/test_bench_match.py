"""bench match runs: the bundled descriptor by default, at its output layer, on a 640x480 frame
(its figures are measured by the bench, not asserted here)."""

from deepvis.bench.match import bench_match
from deepvis.core.defaults import DESCRIPTOR_MODEL


def test_bench_match_reports_both_sides_and_the_queries():
    result = bench_match(rounds=1, queries=3)
    assert result["model"] == DESCRIPTOR_MODEL and result["layer"] == "output"
    assert {"bare_ms", "descriptor_map_ms", "ratio", "query_ms_320x240", "query_ms_640x480",
            "view_query_ms_320x240"} <= set(result)
    assert result["frame"] == "640x480" and result["queries"] == 3
