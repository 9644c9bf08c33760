"""gambit_gym.text."""
