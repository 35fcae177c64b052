"""The local engine: implicit-based emulation of Personalize's recipes, trained offline.

`train` fits and saves a model directory, `artifacts` defines and loads it, `scoring`
holds the serve-time maths and `backend` serves it through the Backend interface.
"""
