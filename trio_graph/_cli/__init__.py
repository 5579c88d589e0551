"""The command line and the terminal view (DESIGN §1, §12): ``python -m trio_graph``.

Layout, from the entry point down:

- :mod:`.main`: ``main(argv)``, the error funnel (what the user can fix is one line on
  stderr, exit 2) and Ctrl-C; :mod:`.usage`: exit codes, defaults, ``UsageError``;
  :mod:`.logs`: log records on stderr.
- :mod:`.parser`: the commands and their options as a table, built into argparse.
- The commands, one handler each, by kind: :mod:`.running` (``demo``, ``run``,
  ``decide``, ``resume``), :mod:`.inspecting` (``runs``, ``history``, ``mermaid``),
  :mod:`.showing` (``show``, ``diff``), :mod:`.queueing` (``submit``, ``jobs``,
  ``worker``), :mod:`.maintenance` (``prune``, ``copy``).
- What they share: :mod:`.store_options` (opening the store), :mod:`.graphs` (loading
  ``module:attr``), :mod:`.traces` (run ids and prefixes, barrier ids), :mod:`.hints`
  (runnable hints, where the store is), :mod:`.tables` (times and tables),
  :mod:`.output` (the stdout guard, how a stored run stands).
- :mod:`.follow` (following a run live, barrier prompts) over :mod:`.view`
  (:class:`~.view.Terminal`: the event lines and the live status line) and
  :mod:`.prompt` (the barrier prompt and its countdown).
"""
