"""`deepvis bench atlas`: both builds process the whole folder and the ratio is theirs."""

import json
import subprocess
import sys

import pytest

# Ray starts and processes: out of the README's run (-m long), about 40 s and 15 s here.
pytestmark = [pytest.mark.slow, pytest.mark.long]


def test_bench_atlas_reports_ray_against_one_process_and_the_map_view():
    proc = subprocess.run([sys.executable, "-m", "deepvis", "bench", "atlas", "--model", "digits_cnn", "--frames", "96",
                           "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))
    assert result["images"] == 96 and result["ray_workers"] >= 1
    local = result["local_images_per_s"]
    assert len(local) == 2 and min(local) > 0 and result["ray_images_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["ray_images_per_s"] / (sum(local) / 2), abs=2e-3)
    # Under pytest-xvfb there is a display: the million-point map view is measured at every level.
    assert isinstance(result["map_view_1m_median_ms"], float)
    assert set(result["map_view_1m_per_level"]) == {"density", "points", "thumbnails"}
