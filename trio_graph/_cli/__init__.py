"""The command line and the terminal view (DESIGN §1, §12): ``python -m trio_graph``."""
