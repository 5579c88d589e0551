"""The model layer (DESIGN §1): pure, no trio, no I/O.

Graph structure and validation, routing, state deltas and reducers, decisions,
checkpoints as values and the policy, the JSON value check. Plain functions and attrs
classes, tested without an event loop; ``tests/test_model_purity.py`` imports every
module in this folder with trio blocked.
"""
