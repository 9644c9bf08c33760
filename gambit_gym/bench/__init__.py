"""gambit_gym.bench."""
