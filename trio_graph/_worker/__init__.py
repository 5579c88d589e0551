"""The worker's parts (the public face is :mod:`trio_graph.worker`).

- :mod:`.claimed_job`: serving one claimed job: keep its lease, run it (again after a
  store outage), settle or park it; :mod:`.failures`: which errors mean a lost lease or
  a store outage.
- :mod:`.stored_decisions`: the decisions a queue store keeps for a job, handed to its run.
- :mod:`.steered`: the claim's fenced store carrying the store's steering, so the run
  follows decisions and cancels live (``follow_store``); :mod:`.parking`: how long a run
  waits, live, at an unanswered barrier before it is parked (``park_after``).
- :mod:`.stats`: what a worker did, counted per claim.
"""
