"""The 20 style dimensions of the GAMBITTS study, in the study's order."""

STYLE_DIMENSIONS: tuple[str, ...] = (
    "optimism", "formality", "encouragement", "severity", "clarity", "humor", "complexity",
    "vision", "detail", "threat", "urgency", "politeness", "personalization", "conciseness",
    "actionability", "emotiveness", "authoritativeness", "authenticity", "supportiveness",
    "gender-codedness",
)
N_DIMENSIONS: int = len(STYLE_DIMENSIONS)
