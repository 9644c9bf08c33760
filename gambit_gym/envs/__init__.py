"""Gymnasium environments: the GAMBIT envs, their outcome models, checks and the meTS envs."""
