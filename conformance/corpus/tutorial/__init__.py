"""Programs that behave like the tutorial "Network Communications" ones (brief §9).

Written from the description of their behaviour, not copied: one client at a
time, one ``recv()`` per message, no terminators, ``split(':')``.
"""
