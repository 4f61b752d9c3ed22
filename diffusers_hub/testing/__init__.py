"""Conformance kits: base test classes that plugins subclass, plus a fake model for users' tests.

A plugin's test module subclasses a contract and names its component::

    from diffusers_hub.testing import SchedulerContract
    from my_plugin.scheduler import MyScheduler

    class TestMyScheduler(SchedulerContract):
        scheduler_class = MyScheduler
        scheduler_config = {"num_train_timesteps": 100}

pytest collects the subclass (its name starts with ``Test``) and runs every contract test on it;
the contract classes themselves are not collected. The tests need pytest's ``tmp_path`` fixture and
nothing else.
"""

from diffusers_hub.testing._components import ModelContract, PipelineContract, perturb
from diffusers_hub.testing._oracle import GaussianOracle, GaussianOracleConfig, OracleOutput
from diffusers_hub.testing._schedulers import (
    SchedulerContract,
    assert_schedule_parity,
    compare_schedules,
    fixed_model_outputs,
    run_schedule,
    twin_schedulers,
)
from diffusers_hub.testing._stateful import MultistepSchedulerContract, StatefulSchedulerContract

# In reading order (the API page renders them in this order): the contracts, the fake model, the
# helpers of scheduler tests, then of model tests.
__all__ = [
    "SchedulerContract",
    "StatefulSchedulerContract",
    "MultistepSchedulerContract",
    "ModelContract",
    "PipelineContract",
    "GaussianOracleConfig",
    "OracleOutput",
    "GaussianOracle",
    "fixed_model_outputs",
    "run_schedule",
    "twin_schedulers",
    "compare_schedules",
    "assert_schedule_parity",
    "perturb",
]
