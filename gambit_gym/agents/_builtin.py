"""Registers the built-in agents by name (string entry points, imported on first use)."""

from gambit_gym.agents.base import register

# Each line: registered name -> "module:factory". Modules are imported only when the agent is made.
_BUILTIN: dict[str, str] = {
    # GAMBITTS agents and classic baselines (batched, numpy; ensembles in torch)
    "StdTS": "gambit_gym.agents.stdts:StdTS",
    "StdTS-Contextual": "gambit_gym.agents.stdts:StdTSContextual",
    "poGAMBITTS": "gambit_gym.agents.gambitts:POGambitTS",
    "foGAMBITTS": "gambit_gym.agents.gambitts:FOGambitTS",
    "ens-poGAMBITTS": "gambit_gym.agents.ensemble:EnsPOGambitTS",
    "ens-foGAMBITTS": "gambit_gym.agents.ensemble:EnsFOGambitTS",
    "LinTS": "gambit_gym.agents.classic:LinTS",
    "LinUCB": "gambit_gym.agents.classic:LinUCB",
    "UCB1": "gambit_gym.agents.classic:UCB1",
    "EpsilonGreedy": "gambit_gym.agents.classic:EpsilonGreedy",
    "Random": "gambit_gym.agents.classic:RandomAgent",
    "Oracle": "gambit_gym.agents.classic:Oracle",
    # mixed-effect agents (gambit_gym.agents.mets)
    "meTS-Lin": "gambit_gym.agents.mets:MeTSLin",
    "meTS-GLM": "gambit_gym.agents.mets:MeTSGLM",
    "meTS-Fa": "gambit_gym.agents.mets:MeTSFa",
    "HierTS": "gambit_gym.agents.mets:HierTS",
    "LinTS-Disjoint": "gambit_gym.agents.mets:MixedLinTS",
    "LinUCB-Disjoint": "gambit_gym.agents.mets:MixedLinUCB",
    "GLM-TS": "gambit_gym.agents.mets:GLMTS",
    "UCB-GLM": "gambit_gym.agents.mets:UCBGLM",
    # stable-baselines3 baselines: runner = "sb3", run whole by gambit_gym.baselines.sb3
    "PPO": "gambit_gym.baselines.sb3:PPOBaseline",
    "A2C": "gambit_gym.baselines.sb3:A2CBaseline",
    "DQN": "gambit_gym.baselines.sb3:DQNBaseline",
}

for _name, _path in _BUILTIN.items():
    register(_name, _path)
