from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import emovec
import emovec.studies.drift
from emovec import export, generation, steer


def test_all_is_sorted_and_complete():
    assert emovec.__all__ == sorted(emovec.__all__)
    public = {n for n, v in vars(emovec).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert public == set(emovec.__all__) - {"__version__"}


def test_public_functions_have_examples():
    for name in emovec.__all__:
        obj = getattr(emovec, name)
        if inspect.isfunction(obj):
            assert obj.__doc__ and "Example" in obj.__doc__, f"{name} needs a docstring with an example"


FRONT_DOOR = ["steering", "SteeringSpec", "SteerTerm", "monitoring", "MonitorTrace", "generate", "Generation",
              "format_prompt", "export_gguf"]


def test_steering_monitoring_generation_and_export_are_at_the_front_door():
    assert set(FRONT_DOOR) <= set(emovec.__all__)
    assert emovec.steering is steer.steering and emovec.SteerTerm is steer.SteerTerm
    assert emovec.generate is generation.generate and emovec.export_gguf is export.export_gguf


@pytest.mark.parametrize("package", [emovec, emovec.studies.drift], ids=lambda p: p.__name__)
def test_every_name_in_all_resolves(package):
    assert package.__all__ == sorted(package.__all__)
    missing = [name for name in package.__all__ if getattr(package, name, None) is None]
    assert not missing, f"{package.__name__}.__all__ names what it does not hold: {missing}"


def test_drift_names_import_from_the_package_and_unknown_names_fail():
    from emovec.studies.drift import DriftMonitor
    from emovec.studies.drift.monitor import DriftMonitor as Home

    assert DriftMonitor is Home
    assert set(emovec.studies.drift.__all__) <= set(dir(emovec.studies.drift))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        emovec.studies.drift.nothing  # noqa: B018


def test_importing_drift_leaves_the_trainer_callback_unloaded():
    code = ("import sys, emovec.studies.drift, emovec.finetune.data; "
            "print('emovec.studies.drift.monitor' in sys.modules, 'transformers.trainer_callback' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
