"""Records: atomic writes never leave a torn file; hardware classes; checkpoints refuse lambdas
cleanly."""

from __future__ import annotations

import pytest

from harness import checkpoint, records


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
    path = tmp_path / "run.json"
    records.write_json(path, {"status": "reached_target"})
    before = path.read_bytes()

    def half_then_crash(f):
        f.write('{"status": "runn')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        records.atomic_write(path, half_then_crash)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_non_finite_numbers_become_null(tmp_path):
    records.write_jsonl(tmp_path / "e.jsonl", [{"fer": float("nan"), "x": float("inf"), "n": 1}])
    assert (tmp_path / "e.jsonl").read_text() == '{"fer": null, "x": null, "n": 1}\n'


@pytest.mark.parametrize(
    "fp,cls",
    [
        ({"gpu": None, "cpu_cores": 2}, "cpu-2core"),
        ({"gpu": "NVIDIA H100 80GB HBM3", "gpu_count": 1}, "h100"),
        ({"gpu": "NVIDIA H200", "gpu_count": 8}, "h200x8"),
        ({"gpu": "Some New Accelerator 9000", "gpu_count": 1}, "somenewaccelerat"),
    ],
)
def test_hardware_classes(fp, cls):
    assert records.hardware_class(fp) == cls


def test_an_unpicklable_state_means_no_checkpoint_not_a_crash(tmp_path):
    error = checkpoint.save(tmp_path, {"state": {"schedule": lambda step: 1.0}})
    assert error and "lambda" in error.lower()
    assert not checkpoint.path_for(tmp_path).exists()
    assert list(tmp_path.iterdir()) == []
