"""diffusers-hub plugin: bddm (BDDM / DiffWave neural vocoding)."""
