"""Talking to an implementation under test: connections that keep a transcript
(``wire``, ``raw``, ``crowd``), the one bounded line reader (``lines``), server
processes (``process``), the framing probe (``probe``) and the timing budgets
(``timing``). Nothing here judges: that is ``conformance.judging``."""
