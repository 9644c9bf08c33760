"""gambit-gym: Gymnasium environments, agents and benchmarks for generator-mediated bandits."""

__version__ = "0.1.0"

from gambit_gym.envs.registration import register_all as _register_all  # noqa: E402

_register_all()
