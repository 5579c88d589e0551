"""The runtime layer (DESIGN §1): the thin Trio shell, the only place with nurseries
and channels.

The executor and the run handle, the step loop, node calls (timeouts, retries,
threads) and fan-out under cancel scopes. It imports the model, never the other way.
"""
