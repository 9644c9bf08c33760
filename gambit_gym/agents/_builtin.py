"""The built-in agents as a data table: name -> (``"module:factory"``, family, one line).

Pure data (it imports nothing): :mod:`gambit_gym.agents.base` seeds the registry from it, and
``gambit-gym agents`` prints its families and lines, so the list of agents is written here once.
Each module is imported only when its agent is made, so ``import gambit_gym`` stays light.
"""

GAMBITTS = "GAMBITTS"
CLASSIC = "classic bandit"
METS = "mixed-effect"
REFERENCE = "reference"
RL = "RL baseline (stable-baselines3)"
NONSTATIONARY = "non-stationary users"
SAFETY = "safe prompt selection"

# name -> ("module:factory", family, one line). Modules are imported only when the agent is made.
BUILTIN: dict[str, tuple[str, str, str]] = {
    # GAMBITTS agents and prompts-as-arms Thompson sampling (batched numpy; ensembles in torch)
    "poGAMBITTS": ("gambit_gym.agents.gambitts:POGambitTS", GAMBITTS,
                   "TS on a linear reward model of the message embedding; simulator access"),
    "foGAMBITTS": ("gambit_gym.agents.gambitts:FOGambitTS", GAMBITTS,
                   "like poGAMBITTS, but learns each prompt's embeddings online (no simulator)"),
    "ens-poGAMBITTS": ("gambit_gym.agents.ensemble:EnsPOGambitTS", GAMBITTS,
                       "ensemble sampling over MLP reward models of the embedding; simulator"),
    "ens-foGAMBITTS": ("gambit_gym.agents.ensemble:EnsFOGambitTS", GAMBITTS,
                       "ensemble MLP reward models, treatment learned online (no simulator)"),
    "StdTS": ("gambit_gym.agents.stdts:StdTS", GAMBITTS,
              "prompts as arms: Normal-Inverse-Gamma Thompson sampling per prompt"),
    "StdTS-Contextual": ("gambit_gym.agents.stdts:StdTSContextual", GAMBITTS,
                         "prompts as arms, one posterior per (context, prompt): 12·K cells"),
    # for the user dynamics of gambit_gym.envs.user_dynamics (docs/user_dynamics.md)
    "StdTS-Observed": ("gambit_gym.agents.nonstationary:StdTSObserved", NONSTATIONARY,
                       "StdTS that skips unobserved rewards and credits late ones to their step"),
    "poGAMBITTS-Observed": ("gambit_gym.agents.nonstationary:POGambitTSObserved", NONSTATIONARY,
                            "poGAMBITTS that skips unobserved rewards, credits late ones to "
                            "their message"),
    "poGAMBITTS-Burden": ("gambit_gym.agents.nonstationary:POGambitTSBurden", NONSTATIONARY,
                          "poGAMBITTS-Observed whose reward model sees each message's "
                          "similarity to recent ones"),
    "DiscountedTS": ("gambit_gym.agents.nonstationary:DiscountedTS", NONSTATIONARY,
                     "Gaussian TS with statistics discounted every step (drift); as Observed"),
    # learning the embedding: a wide info["embedding"] (docs/user_dynamics.md)
    "poGAMBITTS-PCA": ("gambit_gym.agents.projection:POGambitTSPCA", GAMBITTS,
                       "poGAMBITTS on k principal axes of the embeddings received, refitted "
                       "online"),
    # the constrained benchmark (gambit_gym.envs.safety; docs/safety.md)
    "Safe-poGAMBITTS": ("gambit_gym.agents.safe:SafePOGambitTS", SAFETY,
                        "poGAMBITTS among prompts whose unsafe rate is credibly under the "
                        "budget (a Beta posterior per context and prompt)"),
    # classic bandits
    "LinTS": ("gambit_gym.agents.classic:LinTS", CLASSIC,
              "linear Thompson sampling on context features, one model per prompt"),
    "LinUCB": ("gambit_gym.agents.classic:LinUCB", CLASSIC,
               "linear UCB on context features, one model per prompt"),
    "UCB1": ("gambit_gym.agents.classic:UCB1", CLASSIC,
             "UCB1 over prompts, sub-Gaussian width; unplayed prompts first"),
    "EpsilonGreedy": ("gambit_gym.agents.classic:EpsilonGreedy", CLASSIC,
                      "ε-greedy on empirical means per prompt (epsilon=0.1)"),
    # the references every suite runs (the leaderboard's 0 and 1)
    "Random": ("gambit_gym.agents.classic:RandomAgent", REFERENCE,
               "uniformly random prompts: score 0"),
    "Oracle": ("gambit_gym.agents.classic:Oracle", REFERENCE,
               "the best prompt in each context from the env's oracle table: score 1"),
    # mixed-effect agents (gambit_gym.agents.mets), for the MixedEffect* envs
    "meTS-Lin": ("gambit_gym.agents.mets:MeTSLin", METS,
                 "mixed-effect TS with exact Gaussian posteriors (Aouali et al. 2023)"),
    "meTS-GLM": ("gambit_gym.agents.mets:MeTSGLM", METS,
                 "mixed-effect TS with a Laplace step per action (logistic link)"),
    "meTS-Fa": ("gambit_gym.agents.mets:MeTSFa", METS,
                "mixed-effect TS with a factored effect posterior"),
    "HierTS": ("gambit_gym.agents.mets:HierTS", METS,
               "hierarchical TS with one shared effect (Hong et al. 2022)"),
    "LinTS-Disjoint": ("gambit_gym.agents.mets:MixedLinTS", METS,
                       "disjoint linear TS per action with the mixed-effect marginal prior"),
    "LinUCB-Disjoint": ("gambit_gym.agents.mets:MixedLinUCB", METS,
                        "disjoint LinUCB per action with the mixed-effect marginal prior"),
    "GLM-TS": ("gambit_gym.agents.mets:GLMTS", METS,
               "disjoint GLM Thompson sampling, Laplace posterior per action"),
    "UCB-GLM": ("gambit_gym.agents.mets:UCBGLM", METS,
                "UCB-GLM per action (Li et al. 2017)"),
    # stable-baselines3 baselines: WholeRunAgents, run whole by gambit_gym.baselines.sb3
    "PPO": ("gambit_gym.baselines.sb3:PPOBaseline", RL,
            "PPO with gamma 0: a decision's value is its immediate reward"),
    "A2C": ("gambit_gym.baselines.sb3:A2CBaseline", RL,
            "A2C with gamma 0: a decision's value is its immediate reward"),
    "DQN": ("gambit_gym.baselines.sb3:DQNBaseline", RL,
            "DQN with gamma 0: a decision's value is its immediate reward"),
}
